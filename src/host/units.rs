//! Human units for the text a model reads: "22.3 GiB", "up 3 days 4 h", "12.5 %".
//! Raw numbers stay in the structured part of a result; these are only for its text.

/// `bytes` in binary units with one decimal: "512 B", "1.5 KiB", "22.3 GiB".
pub fn bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Precision lost past 2^53 bytes is far below the one decimal shown.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A span of seconds in its two largest units: "3 days 4 h", "5 h 12 min", "42 s".
pub fn duration(seconds: u64) -> String {
    let (days, hours) = (seconds / 86_400, seconds % 86_400 / 3_600);
    let (minutes, secs) = (seconds % 3_600 / 60, seconds % 60);
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, _) => format!("{minutes} min {secs} s"),
        (0, _, _) => format!("{hours} h {minutes} min"),
        _ => format!("{days} day{} {hours} h", plural(days)),
    }
}

/// A duration in milliseconds, in the two largest units that matter: "850 ms", "12.3 s",
/// "4 min 5 s", "2 h 3 min", "3 d 4 h" (a command's or a job's run time).
pub fn duration_ms(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0 => format!("{ms} ms"),
        1..60 => format!("{}.{} s", secs, (ms % 1000) / 100),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        3600..86_400 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// `part` as a share of `whole` in percent (0 when `whole` is 0).
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss)]
    let share = part as f64 * 100.0 / whole as f64;
    share
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_use_binary_units_with_one_decimal() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(23_944_000_000), "22.3 GiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn durations_show_their_two_largest_units() {
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(125), "2 min 5 s");
        assert_eq!(duration(5 * 3600 + 12 * 60 + 9), "5 h 12 min");
        assert_eq!(duration(86_400 + 59), "1 day 0 h");
        assert_eq!(duration(3 * 86_400 + 4 * 3600 + 100), "3 days 4 h");
    }

    #[test]
    fn percent_of_nothing_is_zero() {
        assert!((percent(1, 4) - 25.0).abs() < f64::EPSILON);
        assert!(percent(5, 0).abs() < f64::EPSILON);
    }

    #[test]
    fn durations_use_the_two_largest_units() {
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(1_000), "1.0 s");
        assert_eq!(duration_ms(12_345), "12.3 s");
        assert_eq!(duration_ms(245_000), "4 min 5 s");
        assert_eq!(duration_ms(7_380_000), "2 h 3 min");
        assert_eq!(duration_ms(273_600_000), "3 d 4 h");
    }
}
