//! Reading and writing the raster formats of the datasets: PNG, JPEG and TIFF.
//!
//! Images are held as 8-bit interleaved samples ([`Image`]). 16-bit PNGs are read exactly by
//! [`read_png16`]; [`read_image`] keeps their high byte.

use std::fs::File;
use std::io::{BufReader, Cursor};
use std::path::Path;

use super::error::{open_file, read_bytes, write_file, DataError, DataResult};

/// An 8-bit raster with interleaved channels (gray = 1, RGB = 3, RGBA or RGB+IR = 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Samples per pixel.
    pub channels: u8,
    /// Row-major samples, `width * height * channels` long.
    pub data: Vec<u8>,
}

/// A 16-bit raster with interleaved channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image16 {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Samples per pixel.
    pub channels: u8,
    /// Row-major samples, `width * height * channels` long.
    pub data: Vec<u16>,
}

impl Image {
    /// A zero-filled image.
    pub fn new(width: u32, height: u32, channels: u8) -> Self {
        let len = width as usize * height as usize * channels as usize;
        Image {
            width,
            height,
            channels,
            data: vec![0; len],
        }
    }

    /// The samples of pixel (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> &[u8] {
        let c = self.channels as usize;
        let start = (y as usize * self.width as usize + x as usize) * c;
        &self.data[start..start + c]
    }

    /// The samples of pixel (x, y), mutable.
    pub fn pixel_mut(&mut self, x: u32, y: u32) -> &mut [u8] {
        let c = self.channels as usize;
        let start = (y as usize * self.width as usize + x as usize) * c;
        &mut self.data[start..start + c]
    }

    /// The window at (x, y) of size (width, height); parts outside the image are `fill`.
    pub fn crop_padded(&self, x: i64, y: i64, width: u32, height: u32, fill: u8) -> Image {
        let c = self.channels as usize;
        let mut out = Image::new(width, height, self.channels);
        out.data.fill(fill);
        for row in 0..height as i64 {
            let sy = y + row;
            if sy < 0 || sy >= self.height as i64 {
                continue;
            }
            let x0 = x.max(0);
            let x1 = (x + width as i64).min(self.width as i64);
            if x0 >= x1 {
                continue;
            }
            let src = (sy as usize * self.width as usize + x0 as usize) * c;
            let dst = (row as usize * width as usize + (x0 - x) as usize) * c;
            let len = (x1 - x0) as usize * c;
            out.data[dst..dst + len].copy_from_slice(&self.data[src..src + len]);
        }
        out
    }

    fn check_len(&self, path: &Path) -> DataResult<()> {
        let expected = self.width as usize * self.height as usize * self.channels as usize;
        if self.data.len() != expected || self.width == 0 || self.height == 0 {
            return Err(DataError::invalid(
                path,
                format!(
                    "image buffer holds {} samples, {}x{}x{} needs {expected} (and a non-empty size)",
                    self.data.len(),
                    self.width,
                    self.height,
                    self.channels
                ),
            ));
        }
        Ok(())
    }
}

/// The raster formats, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// `.png`
    Png,
    /// `.jpg`, `.jpeg`
    Jpeg,
    /// `.tif`, `.tiff`
    Tiff,
}

impl ImageFormat {
    /// The format named by the extension of `path`.
    pub fn from_path(path: &Path) -> DataResult<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(ImageFormat::Png),
            Some("jpg" | "jpeg") => Ok(ImageFormat::Jpeg),
            Some("tif" | "tiff") => Ok(ImageFormat::Tiff),
            _ => Err(DataError::invalid(
                path,
                "unknown image extension: expected .png, .jpg, .jpeg, .tif or .tiff",
            )),
        }
    }
}

/// True when `path` has an image extension this module reads.
pub fn is_image_path(path: &Path) -> bool {
    ImageFormat::from_path(path).is_ok()
}

/// Reads a PNG, JPEG or TIFF as 8-bit samples (16-bit data keeps its high byte).
pub fn read_image(path: &Path) -> DataResult<Image> {
    match ImageFormat::from_path(path)? {
        ImageFormat::Png => read_png(path),
        ImageFormat::Jpeg => read_jpeg(path),
        ImageFormat::Tiff => read_tiff(path),
    }
}

/// Only the size (width, height) of an image, reading as little as the format allows.
pub fn image_size(path: &Path) -> DataResult<(u32, u32)> {
    match ImageFormat::from_path(path)? {
        ImageFormat::Png => {
            let reader = png_reader(path)?;
            let info = reader.info();
            Ok((info.width, info.height))
        }
        ImageFormat::Jpeg => {
            let bytes = read_bytes(path)?;
            let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
            decoder.read_info().map_err(|e| DataError::codec(path, e))?;
            let info = decoder
                .info()
                .ok_or_else(|| DataError::invalid(path, "JPEG without a frame header"))?;
            Ok((u32::from(info.width), u32::from(info.height)))
        }
        ImageFormat::Tiff => {
            let file = open_file(path)?;
            let mut decoder = tiff::decoder::Decoder::new(BufReader::new(file))
                .map_err(|e| DataError::codec(path, e))?;
            decoder.dimensions().map_err(|e| DataError::codec(path, e))
        }
    }
}

/// Writes an image in the format named by the extension of `path` (JPEG at quality 95).
pub fn write_image(path: &Path, image: &Image) -> DataResult<()> {
    match ImageFormat::from_path(path)? {
        ImageFormat::Png => write_png(path, image),
        ImageFormat::Jpeg => write_jpeg(path, image, 95),
        ImageFormat::Tiff => write_tiff(path, image, TiffCompression::None),
    }
}

fn png_reader(path: &Path) -> DataResult<png::Reader<BufReader<File>>> {
    let file = open_file(path)?;
    png::Decoder::new(BufReader::new(file))
        .read_info()
        .map_err(|e| DataError::codec(path, e))
}

fn png_channels(path: &Path, color: png::ColorType) -> DataResult<u8> {
    match color {
        png::ColorType::Grayscale => Ok(1),
        png::ColorType::GrayscaleAlpha => Ok(2),
        png::ColorType::Rgb => Ok(3),
        png::ColorType::Rgba => Ok(4),
        png::ColorType::Indexed => Err(DataError::invalid(
            path,
            "indexed PNG was not expanded (unsupported palette layout)",
        )),
    }
}

/// Decodes a PNG to its raw samples at its own bit depth (8 or 16; palettes and low depths expanded to 8).
fn decode_png(path: &Path) -> DataResult<(u32, u32, u8, png::BitDepth, Vec<u8>)> {
    let file = open_file(path)?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(|e| DataError::codec(path, e))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| DataError::invalid(path, "PNG too large to decode"))?;
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| DataError::codec(path, e))?;
    buf.truncate(info.buffer_size());
    let channels = png_channels(path, info.color_type)?;
    Ok((info.width, info.height, channels, info.bit_depth, buf))
}

/// Reads a PNG as 8-bit samples (16-bit samples keep their high byte).
pub fn read_png(path: &Path) -> DataResult<Image> {
    let (width, height, channels, depth, buf) = decode_png(path)?;
    let data = match depth {
        png::BitDepth::Sixteen => buf.chunks_exact(2).map(|s| s[0]).collect(),
        _ => buf,
    };
    Ok(Image {
        width,
        height,
        channels,
        data,
    })
}

/// Reads a label map: a single-channel 8-bit PNG (anything else is an error naming the file).
pub fn read_label_png(path: &Path) -> DataResult<Image> {
    let (width, height, channels, depth, data) = decode_png(path)?;
    if channels != 1 || depth != png::BitDepth::Eight {
        return Err(DataError::invalid(
            path,
            format!(
                "label maps must be single-channel 8-bit PNGs, this one has {channels} channel(s) of {} bits",
                depth as u8
            ),
        ));
    }
    Ok(Image {
        width,
        height,
        channels,
        data,
    })
}

/// Reads a PNG keeping 16-bit samples exact (8-bit samples are widened by `v * 257`).
pub fn read_png16(path: &Path) -> DataResult<Image16> {
    let (width, height, channels, depth, buf) = decode_png(path)?;
    let data = match depth {
        png::BitDepth::Sixteen => buf
            .chunks_exact(2)
            .map(|s| u16::from_be_bytes([s[0], s[1]]))
            .collect(),
        _ => buf.iter().map(|&v| u16::from(v) * 257).collect(),
    };
    Ok(Image16 {
        width,
        height,
        channels,
        data,
    })
}

fn png_color(path: &Path, channels: u8) -> DataResult<png::ColorType> {
    match channels {
        1 => Ok(png::ColorType::Grayscale),
        2 => Ok(png::ColorType::GrayscaleAlpha),
        3 => Ok(png::ColorType::Rgb),
        4 => Ok(png::ColorType::Rgba),
        n => Err(DataError::invalid(
            path,
            format!("PNG holds 1 to 4 channels, got {n}"),
        )),
    }
}

fn encode_png(
    path: &Path,
    width: u32,
    height: u32,
    channels: u8,
    depth: png::BitDepth,
    data: &[u8],
) -> DataResult<()> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png_color(path, channels)?);
        encoder.set_depth(depth);
        let mut writer = encoder
            .write_header()
            .map_err(|e| DataError::codec(path, e))?;
        writer
            .write_image_data(data)
            .map_err(|e| DataError::codec(path, e))?;
        writer.finish().map_err(|e| DataError::codec(path, e))?;
    }
    write_file(path, &bytes)
}

/// Writes an 8-bit PNG (lossless).
pub fn write_png(path: &Path, image: &Image) -> DataResult<()> {
    image.check_len(path)?;
    encode_png(
        path,
        image.width,
        image.height,
        image.channels,
        png::BitDepth::Eight,
        &image.data,
    )
}

/// Writes a 16-bit PNG (lossless).
pub fn write_png16(path: &Path, image: &Image16) -> DataResult<()> {
    let expected = image.width as usize * image.height as usize * image.channels as usize;
    if image.data.len() != expected {
        return Err(DataError::invalid(
            path,
            "16-bit image buffer does not match its size",
        ));
    }
    let bytes: Vec<u8> = image.data.iter().flat_map(|v| v.to_be_bytes()).collect();
    encode_png(
        path,
        image.width,
        image.height,
        image.channels,
        png::BitDepth::Sixteen,
        &bytes,
    )
}

/// Reads a baseline or progressive JPEG (gray or RGB; CMYK is refused).
pub fn read_jpeg(path: &Path) -> DataResult<Image> {
    let bytes = read_bytes(path)?;
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    let pixels = decoder.decode().map_err(|e| DataError::codec(path, e))?;
    let info = decoder
        .info()
        .ok_or_else(|| DataError::invalid(path, "JPEG without a frame header"))?;
    let (channels, data) = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => (1, pixels),
        jpeg_decoder::PixelFormat::L16 => (1, pixels.chunks_exact(2).map(|s| s[0]).collect()),
        jpeg_decoder::PixelFormat::RGB24 => (3, pixels),
        jpeg_decoder::PixelFormat::CMYK32 => {
            return Err(DataError::invalid(
                path,
                "CMYK JPEGs are not supported: convert to RGB",
            ))
        }
    };
    Ok(Image {
        width: u32::from(info.width),
        height: u32::from(info.height),
        channels,
        data,
    })
}

/// Writes a JPEG (gray or RGB; the 4th channel of a 4-channel image is dropped) at `quality` 1–100.
pub fn write_jpeg(path: &Path, image: &Image, quality: u8) -> DataResult<()> {
    image.check_len(path)?;
    let color = match image.channels {
        1 => jpeg_encoder::ColorType::Luma,
        3 => jpeg_encoder::ColorType::Rgb,
        4 => jpeg_encoder::ColorType::Rgba,
        n => {
            return Err(DataError::invalid(
                path,
                format!("JPEG holds 1, 3 or 4 channels, got {n}"),
            ))
        }
    };
    let too_big = || DataError::invalid(path, "JPEG sides are limited to 65535 pixels");
    let width = u16::try_from(image.width).map_err(|_| too_big())?;
    let height = u16::try_from(image.height).map_err(|_| too_big())?;
    let mut bytes = Vec::new();
    jpeg_encoder::Encoder::new(&mut bytes, quality)
        .encode(&image.data, width, height, color)
        .map_err(|e| DataError::codec(path, e))?;
    write_file(path, &bytes)
}

/// TIFF compression for [`write_tiff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TiffCompression {
    /// Uncompressed strips.
    None,
    /// PackBits run-length coding.
    PackBits,
}

/// Reads an 8- or 16-bit TIFF (gray, RGB, RGBA or multi-band such as RGB+IR) as 8-bit samples.
pub fn read_tiff(path: &Path) -> DataResult<Image> {
    let file = open_file(path)?;
    let mut decoder = tiff::decoder::Decoder::new(BufReader::new(file))
        .map_err(|e| DataError::codec(path, e))?
        .with_limits(tiff::decoder::Limits::unlimited());
    let (width, height) = decoder
        .dimensions()
        .map_err(|e| DataError::codec(path, e))?;
    let color = decoder.colortype().map_err(|e| DataError::codec(path, e))?;
    let channels: u8 = match color {
        tiff::ColorType::Gray(_) => 1,
        tiff::ColorType::GrayA(_) => 2,
        tiff::ColorType::RGB(_) => 3,
        tiff::ColorType::RGBA(_) | tiff::ColorType::CMYK(_) => 4,
        tiff::ColorType::Multiband { num_samples, .. } => u8::try_from(num_samples)
            .map_err(|_| DataError::invalid(path, format!("{num_samples} bands are too many")))?,
        other => {
            return Err(DataError::invalid(
                path,
                format!("unsupported TIFF colour type {other:?}"),
            ))
        }
    };
    let data = match decoder
        .read_image()
        .map_err(|e| DataError::codec(path, e))?
    {
        tiff::decoder::DecodingResult::U8(v) => v,
        tiff::decoder::DecodingResult::U16(v) => v.iter().map(|s| (s >> 8) as u8).collect(),
        _ => {
            return Err(DataError::invalid(
                path,
                "only 8- and 16-bit unsigned TIFF samples are supported",
            ))
        }
    };
    let image = Image {
        width,
        height,
        channels,
        data,
    };
    image.check_len(path)?;
    Ok(image)
}

/// Writes an 8-bit TIFF: 1 band gray, 3 bands RGB, 4 bands RGB plus a 4th band (e.g. near-infrared).
pub fn write_tiff(path: &Path, image: &Image, compression: TiffCompression) -> DataResult<()> {
    use tiff::encoder::{colortype, Compression, TiffEncoder};
    image.check_len(path)?;
    let mut cursor = Cursor::new(Vec::new());
    {
        let encoder = TiffEncoder::new(&mut cursor).map_err(|e| DataError::codec(path, e))?;
        let mut encoder = encoder.with_compression(match compression {
            TiffCompression::None => Compression::Uncompressed,
            TiffCompression::PackBits => Compression::Packbits,
        });
        let (w, h, data) = (image.width, image.height, &image.data);
        let result = match image.channels {
            1 => encoder.write_image::<colortype::Gray8>(w, h, data),
            3 => encoder.write_image::<colortype::RGB8>(w, h, data),
            4 => encoder.write_image::<colortype::RGBA8>(w, h, data),
            n => {
                return Err(DataError::invalid(
                    path,
                    format!("TIFF writer takes 1, 3 or 4 bands, got {n}"),
                ))
            }
        };
        result.map_err(|e| DataError::codec(path, e))?;
    }
    write_file(path, &cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32, channels: u8) -> Image {
        let mut image = Image::new(width, height, channels);
        for (i, v) in image.data.iter_mut().enumerate() {
            *v = (i * 7 % 251) as u8;
        }
        image
    }

    #[test]
    fn png_and_tiff_round_trip_exactly() {
        let dir = tempfile::tempdir().unwrap();
        for channels in [1u8, 3, 4] {
            let image = gradient(13, 7, channels);
            let png = dir.path().join(format!("a{channels}.png"));
            write_png(&png, &image).unwrap();
            assert_eq!(read_image(&png).unwrap(), image);
            for compression in [TiffCompression::None, TiffCompression::PackBits] {
                let tif = dir.path().join(format!("a{channels}{compression:?}.tif"));
                write_tiff(&tif, &image, compression).unwrap();
                assert_eq!(read_image(&tif).unwrap(), image);
                assert_eq!(image_size(&tif).unwrap(), (13, 7));
            }
        }
    }

    #[test]
    fn png16_keeps_all_bits() {
        let dir = tempfile::tempdir().unwrap();
        let image = Image16 {
            width: 3,
            height: 2,
            channels: 1,
            data: vec![0, 1, 256, 4095, 40000, 65535],
        };
        let path = dir.path().join("d.png");
        write_png16(&path, &image).unwrap();
        assert_eq!(read_png16(&path).unwrap(), image);
        assert_eq!(read_png(&path).unwrap().data, vec![0, 0, 1, 15, 156, 255]);
    }

    #[test]
    fn jpeg_round_trip_is_close() {
        let dir = tempfile::tempdir().unwrap();
        let mut image = Image::new(32, 16, 3);
        image.data.fill(120);
        let path = dir.path().join("a.jpg");
        write_jpeg(&path, &image, 95).unwrap();
        let back = read_image(&path).unwrap();
        assert_eq!((back.width, back.height, back.channels), (32, 16, 3));
        assert!(back.data.iter().all(|&v| v.abs_diff(120) <= 2));
    }

    #[test]
    fn crop_pads_outside() {
        let image = gradient(4, 4, 1);
        let crop = image.crop_padded(2, 2, 4, 4, 0);
        assert_eq!(crop.pixel(0, 0), image.pixel(2, 2));
        assert_eq!(crop.pixel(1, 1), image.pixel(3, 3));
        assert_eq!(crop.pixel(2, 2), &[0]);
    }

    #[test]
    fn label_pngs_must_be_gray_8_bit() {
        let dir = tempfile::tempdir().unwrap();
        let gray = dir.path().join("g.png");
        write_png(&gray, &gradient(4, 4, 1)).unwrap();
        assert_eq!(read_label_png(&gray).unwrap(), gradient(4, 4, 1));
        let rgb = dir.path().join("c.png");
        write_png(&rgb, &gradient(4, 4, 3)).unwrap();
        let err = read_label_png(&rgb).unwrap_err().to_string();
        assert!(err.contains("c.png") && err.contains("3 channel"), "{err}");
        let deep = dir.path().join("d.png");
        let image = Image16 {
            width: 1,
            height: 1,
            channels: 1,
            data: vec![7],
        };
        write_png16(&deep, &image).unwrap();
        assert!(read_label_png(&deep).is_err());
    }

    #[test]
    fn bad_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.png");
        std::fs::write(&path, b"not a png").unwrap();
        let err = read_image(&path).unwrap_err().to_string();
        assert!(err.contains("broken.png"), "{err}");
        assert!(read_image(&dir.path().join("x.bmp")).is_err());
    }
}
