//! A naive calendar, the one the checks compare stamps with: a date is
//! found by walking from 1970-01-01 year by year and then month by month,
//! and a date's day is found by counting. Written from the calendar's
//! rules, not from the engine's arithmetic (Howard Hinnant's
//! `civil_from_days` in `engine::stamp`, which a test checks against it).

/// Whether `year` is a leap year (Gregorian).
fn leap(year: u64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// The lengths of the months of `year`, January first.
fn month_lengths(year: u64) -> [u64; 12] {
    [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ]
}

/// The date `days` days after 1970-01-01, as (year, month, day), walked
/// to year by year and then month by month.
#[cfg(test)]
pub fn date_from_days(mut days: u64) -> (u64, u64, u64) {
    let mut year = 1970;
    while days >= if leap(year) { 366 } else { 365 } {
        days -= if leap(year) { 366 } else { 365 };
        year += 1;
    }
    let lens = month_lengths(year);
    let mut month = 0;
    while days >= lens[month] {
        days -= lens[month];
        month += 1;
    }
    (year, month as u64 + 1, days + 1)
}

/// The days from 1970-01-01 to `year`-`month`-`day`, by counting. Any
/// numbers are taken (a parser of what a sink received may see any
/// digits): a year before 1970 counts as 1970 (its February as its own),
/// month 0 as January and a month after 12 as the one after December, day
/// 0 as day 1.
pub fn days_from_date(year: u64, month: u64, day: u64) -> u64 {
    // Leap days before `year`, counted from year 1.
    let leaps = |y: u64| (y - 1) / 4 - (y - 1) / 100 + (y - 1) / 400;
    let mut days = 365 * (year.max(1970) - 1970) + leaps(year.max(1970)) - leaps(1970);
    days += month_lengths(year)[..(month as usize).saturating_sub(1).min(12)]
        .iter()
        .sum::<u64>();
    days + day.saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_undoes_walking() {
        for d in (0..84_000u64).chain([100_000, 150_000, 213_503]) {
            let (y, m, day) = date_from_days(d);
            assert_eq!(days_from_date(y, m, day), d, "day {d}");
        }
        assert_eq!(date_from_days(0), (1970, 1, 1));
        // 2000-02-29, a leap day of a century divisible by 400.
        assert_eq!(date_from_days(11_016), (2000, 2, 29));
    }
}
