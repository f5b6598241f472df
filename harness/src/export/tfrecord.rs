//! TFRecord framing, the container of TensorBoard's event files: each record is its length
//! (u64, little-endian), the masked CRC32C of those 8 bytes, the data, and the masked CRC32C of
//! the data (both u32, little-endian).

/// The constant TensorFlow adds to a rotated CRC32C so that a CRC of data holding CRCs is not
/// trivially zero (`tensorflow/core/lib/hash/crc32c.h`, `kMaskDelta`).
const MASK_DELTA: u32 = 0xa282_ead8;

/// The masked CRC32C (Castagnoli) of `data`, as TFRecord stores it: the CRC rotated right by 15
/// bits plus [`MASK_DELTA`].
pub fn masked_crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(MASK_DELTA)
}

/// Appends `data` to `out` as one TFRecord.
pub fn append_record(out: &mut Vec<u8>, data: &[u8]) {
    let length = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc32c(&length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CRC32C vectors of RFC 3720 (iSCSI), appendix B.4, and the usual check value of
    /// `123456789`; each also as TensorBoard's own `crc32c` (tensorboard 2.21) computes it.
    #[test]
    fn crc32c_matches_the_rfc_3720_vectors() {
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c::crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let ascending: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c::crc32c(&ascending), 0x46dd_794e);
        let descending: Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(crc32c::crc32c(&descending), 0x113f_db5c);
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    /// Masked values as TensorBoard's own `masked_crc32c` (tensorboard 2.21) computes them.
    #[test]
    fn masking_matches_tensorboard() {
        assert_eq!(masked_crc32c(b""), 0xa282_ead8);
        assert_eq!(masked_crc32c(b"a"), 0x28e4_6e78);
        assert_eq!(masked_crc32c(b"123456789"), 0xc78a_b0e5);
    }

    /// The bytes TensorBoard's `RecordWriter` writes for the event
    /// `{wall_time: 1700000000.5, step: 0, file_version: "brain.Event:2"}`.
    #[test]
    fn a_record_is_framed_as_tensorboard_frames_it() {
        let event = hex::decode("0900002040fc54d9411a0d627261696e2e4576656e743a32").unwrap();
        let mut out = Vec::new();
        append_record(&mut out, &event);
        assert_eq!(
            hex::encode(&out),
            "1800000000000000a37f4b220900002040fc54d9411a0d627261696e2e4576656e743a322b353110"
        );
    }

    #[test]
    fn a_changed_byte_changes_both_checksums_it_covers() {
        let mut a = Vec::new();
        append_record(&mut a, b"abc");
        let mut b = Vec::new();
        append_record(&mut b, b"abd");
        assert_eq!(a[..12], b[..12], "same length, same length CRC");
        assert_ne!(a[15..], b[15..], "the data CRC differs");
    }
}
