//! The store's timestamps (`YYYY-MM-DDTHH:MM:SS[.fff]Z`, UTC, as [`crate::time`] writes them)
//! as milliseconds since the Unix epoch, the unit MLflow stores and TensorBoard's wall time
//! divides.

/// Milliseconds since the Unix epoch of an RFC 3339 UTC timestamp (`Z` suffix), or `None` when
/// it is not one.
pub fn unix_millis(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock = clock.splitn(3, ':').map(str::parse::<i64>);
    let (hour, minute, second) = (
        clock.next()?.ok()?,
        clock.next()?.ok()?,
        clock.next()?.ok()?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let millis = match fraction.len() {
        0 => 0,
        n if fraction.bytes().all(|b| b.is_ascii_digit()) => {
            let digits = &fraction[..n.min(3)];
            digits.parse::<i64>().ok()? * 10_i64.pow(3 - digits.len() as u32)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// Days since 1970-01-01 of a Gregorian date (Howard Hinnant's algorithm, the inverse of the
/// one [`crate::time::rfc3339`] formats with).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let shifted_month = (month + 9) % 12;
    let doy = (153 * shifted_month + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::unix_millis;

    #[test]
    fn reads_what_the_store_writes() {
        for (secs, millis) in [
            (0, 0),
            (951_782_400, 0),
            (1_795_766_400, 5),
            (1_700_000_000, 999),
        ] {
            let text = crate::time::rfc3339(secs, millis);
            assert_eq!(
                unix_millis(&text),
                Some(secs * 1000 + i64::from(millis)),
                "{text}"
            );
        }
        assert_eq!(unix_millis("2026-11-27T08:00:00Z"), Some(1_795_766_400_000));
        assert_eq!(
            unix_millis("2026-11-27T08:00:00.1Z"),
            Some(1_795_766_400_100)
        );
    }

    #[test]
    fn refuses_what_is_not_a_utc_timestamp() {
        for text in [
            "",
            "2026-11-27",
            "2026-11-27T08:00:00",
            "2026-13-01T00:00:00Z",
            "2026-11-27T08:00:00.x5Z",
        ] {
            assert_eq!(unix_millis(text), None, "{text}");
        }
    }
}
