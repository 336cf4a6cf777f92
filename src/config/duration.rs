//! Human durations in settings: `90`, `90s`, `15m`, `8h`, `7d`.

/// Parse a duration setting into seconds. A bare number is seconds.
pub fn parse_duration_secs(raw: &str) -> Option<u64> {
    let raw = raw.trim();
    let (digits, unit) = match raw.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (raw.get(..i)?, c.to_ascii_lowercase()),
        Some(_) => (raw, 's'),
        None => return None,
    };
    let value: u64 = digits.trim().parse().ok()?;
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    value.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_bare_seconds() {
        assert_eq!(parse_duration_secs("90"), Some(90));
        assert_eq!(parse_duration_secs("90s"), Some(90));
        assert_eq!(parse_duration_secs("15m"), Some(900));
        assert_eq!(parse_duration_secs("8h"), Some(28_800));
        assert_eq!(parse_duration_secs("7D"), Some(604_800));
    }

    #[test]
    fn refuses_garbage() {
        for bad in ["", "h", "8x", "-1s", "1.5h", "eight"] {
            assert_eq!(parse_duration_secs(bad), None, "{bad}");
        }
    }
}
