//! IANA time zones (`DISPLAY_TIMEZONE`, a form's `timezone` field) for chrono.
//!
//! The zone data is compiled in (jiff's bundled copy of the IANA database, kept as the
//! database's own compact binary files), so the container, which has no zoneinfo of its own,
//! shows the same times. A zone is read from that data the first time its name is asked for
//! and kept for the life of the process: there are some 600 names, so what is kept is bounded.
//!
//! Why not chrono-tz: it compiles every zone's history into Rust statics, 35,000 spans each
//! holding a `&'static str`. In a position-independent binary every such pointer is relocated
//! when the process starts, which made 1.2 MiB of private memory resident in every process
//! whether it shows times in one zone or none (docs/benchmarks.md, "Seventh pass").

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{LazyLock, Mutex};

use chrono::{FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone};

/// An IANA time zone, `Copy` like chrono's own zones: it refers to zone data kept for the life
/// of the process.
#[derive(Clone, Copy)]
pub struct Zone(Option<&'static jiff::tz::TimeZone>);

/// The zones read so far, by name. Only names the database knows are kept.
static ZONES: LazyLock<Mutex<HashMap<String, &'static jiff::tz::TimeZone>>> =
    LazyLock::new(Default::default);

impl Zone {
    /// Coordinated Universal Time.
    pub const UTC: Zone = Zone(None);

    /// The zone an IANA name (`Europe/Berlin`, `UTC`) names, or `None` for a name the
    /// database does not know.
    pub fn named(name: &str) -> Option<Self> {
        if name.is_empty() || name.len() > 64 {
            return None;
        }
        if name == "UTC" {
            return Some(Self::UTC);
        }
        // The database's lookup ignores case: kept by the name it gives, so that spellings of
        // one name share one entry.
        let found = jiff::tz::db().get(name).ok()?;
        let canonical = found.iana_name()?.to_string();
        let mut zones = ZONES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let zone = *zones
            .entry(canonical)
            .or_insert_with(|| Box::leak(Box::new(found)));
        Some(Zone(Some(zone)))
    }

    /// The zone's IANA name, as the database spells it.
    pub fn name(&self) -> &'static str {
        match self.0 {
            None => "UTC",
            Some(zone) => zone.iana_name().unwrap_or("UTC"),
        }
    }

    fn at(&self, utc: &NaiveDateTime) -> ZoneOffset {
        let Some(zone) = self.0 else {
            return ZoneOffset::zero(*self);
        };
        let seconds = utc.and_utc().timestamp();
        match jiff::Timestamp::from_second(seconds) {
            Ok(instant) => self.offset(zone, instant),
            // Outside jiff's range (years beyond ±9999): the zone's standard offset then is
            // unknowable anyway.
            Err(_) => ZoneOffset::zero(*self),
        }
    }

    fn offset(&self, zone: &'static jiff::tz::TimeZone, instant: jiff::Timestamp) -> ZoneOffset {
        let info = zone.to_offset_info(instant);
        ZoneOffset {
            zone: *self,
            fixed: fixed(info.offset()),
            abbreviation: Abbreviation::new(info.abbreviation()),
        }
    }
}

fn fixed(offset: jiff::tz::Offset) -> FixedOffset {
    FixedOffset::east_opt(offset.seconds()).unwrap_or(FixedOffset::east_opt(0).expect("zero"))
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Zone {}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name())
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name is not an IANA time zone the compiled-in database knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownZone;

impl FromStr for Zone {
    type Err = UnknownZone;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::named(name).ok_or(UnknownZone)
    }
}

/// A zone's offset at one instant, with its abbreviation (`CET`, `EDT`), which `%Z` shows.
#[derive(Clone, Copy)]
pub struct ZoneOffset {
    zone: Zone,
    fixed: FixedOffset,
    abbreviation: Abbreviation,
}

/// A zone abbreviation (`CEST`, `+0530`), kept inline so that an offset stays `Copy`. The
/// database's are at most six characters; anything over 15 bytes is cut at a character.
#[derive(Clone, Copy)]
struct Abbreviation {
    bytes: [u8; 15],
    len: u8,
}

impl Abbreviation {
    fn new(text: &str) -> Self {
        let mut len = text.len().min(15);
        while !text.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0; 15];
        bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
        Self {
            bytes,
            len: len as u8,
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl ZoneOffset {
    /// No offset: UTC's, and what a zone is given for instants beyond the database's years.
    fn zero(zone: Zone) -> Self {
        Self {
            zone,
            fixed: FixedOffset::east_opt(0).expect("zero"),
            abbreviation: Abbreviation::new("UTC"),
        }
    }
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        self.fixed
    }
}

impl fmt::Debug for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.abbreviation.as_str(), self.fixed)
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.abbreviation.as_str())
    }
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &Self::Offset) -> Self {
        offset.zone
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> LocalResult<Self::Offset> {
        match local.and_hms_opt(0, 0, 0) {
            Some(midnight) => self.offset_from_local_datetime(&midnight),
            None => LocalResult::None,
        }
    }

    /// A time skipped by a clock change has no offset; a time that happens twice has two, the
    /// earlier instant's first.
    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> LocalResult<Self::Offset> {
        let Some(zone) = self.0 else {
            return LocalResult::Single(ZoneOffset::zero(*self));
        };
        let Some(civil) = civil(local) else {
            return LocalResult::None;
        };
        // The instant of `local` read with `offset`, and the offset the zone has then.
        let read = |offset: jiff::tz::Offset| {
            let utc = *local - chrono::TimeDelta::seconds(i64::from(offset.seconds()));
            self.at(&utc)
        };
        match zone.to_ambiguous_timestamp(civil).offset() {
            jiff::tz::AmbiguousOffset::Unambiguous { offset } => LocalResult::Single(read(offset)),
            jiff::tz::AmbiguousOffset::Gap { .. } => LocalResult::None,
            jiff::tz::AmbiguousOffset::Fold { before, after } => {
                LocalResult::Ambiguous(read(before), read(after))
            }
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> Self::Offset {
        match utc.and_hms_opt(0, 0, 0) {
            Some(midnight) => self.at(&midnight),
            None => ZoneOffset::zero(*self),
        }
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> Self::Offset {
        self.at(utc)
    }
}

/// chrono's local time as jiff's, or `None` outside jiff's years (-9999 to 9999).
fn civil(local: &NaiveDateTime) -> Option<jiff::civil::DateTime> {
    use chrono::{Datelike, Timelike};
    let year = i16::try_from(local.year()).ok()?;
    jiff::civil::DateTime::new(
        year,
        i8::try_from(local.month()).ok()?,
        i8::try_from(local.day()).ok()?,
        i8::try_from(local.hour()).ok()?,
        i8::try_from(local.minute()).ok()?,
        i8::try_from(local.second()).ok()?,
        // chrono counts a leap second as 1,000,000,000 nanoseconds or more; jiff does not.
        i32::try_from(local.nanosecond().min(999_999_999)).ok()?,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn local(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn names_are_iana_names_and_unknown_ones_are_refused() {
        assert_eq!("UTC".parse::<Zone>(), Ok(Zone::UTC));
        let berlin: Zone = "Europe/Berlin".parse().unwrap();
        assert_eq!(berlin.name(), "Europe/Berlin");
        assert_eq!(berlin, Zone::named("Europe/Berlin").unwrap());
        assert_ne!(berlin, Zone::UTC);
        assert_eq!(
            Zone::named("America/New_York").unwrap().name(),
            "America/New_York"
        );
        // Case is ignored, and every spelling is the one zone.
        assert_eq!(
            Zone::named("europe/BERLIN").unwrap().name(),
            "Europe/Berlin"
        );
        assert_eq!(Zone::named("europe/BERLIN"), Some(berlin));
        for bad in [
            "",
            "Mars/Olympus_Mons",
            "Europe/Berlin ",
            "../../etc/passwd",
            "Europe/",
        ] {
            assert_eq!(bad.parse::<Zone>(), Err(UnknownZone), "{bad:?}");
        }
        assert!(Zone::named(&"A/".repeat(100)).is_none());
    }

    #[test]
    fn instants_are_shown_with_the_zones_offset_and_abbreviation_of_that_day() {
        let berlin = Zone::named("Europe/Berlin").unwrap();
        let summer = utc("2025-09-25T20:05:39Z").with_timezone(&berlin);
        assert_eq!(
            summer.format("%H:%M %Z %:z").to_string(),
            "22:05 CEST +02:00"
        );
        let winter = utc("2025-01-25T20:05:39Z").with_timezone(&berlin);
        assert_eq!(
            winter.format("%H:%M %Z %:z").to_string(),
            "21:05 CET +01:00"
        );
        let new_york = Zone::named("America/New_York").unwrap();
        let evening = utc("2025-09-26T00:30:00Z").with_timezone(&new_york);
        assert_eq!(
            evening.format("%a %-d %b, %H:%M %Z").to_string(),
            "Thu 25 Sep, 20:30 EDT"
        );
        let plain = utc("2025-09-25T20:05:39Z").with_timezone(&Zone::UTC);
        assert_eq!(plain.format("%H:%M %Z").to_string(), "20:05 UTC");
    }

    #[test]
    fn local_times_are_read_in_the_zone_skipped_ones_are_not_and_repeated_ones_are_earliest() {
        let berlin = Zone::named("Europe/Berlin").unwrap();
        let instant = |text| {
            berlin
                .from_local_datetime(&local(text))
                .earliest()
                .map(|date| date.with_timezone(&Utc).to_rfc3339())
        };
        assert_eq!(
            instant("2025-09-25 22:05").as_deref(),
            Some("2025-09-25T20:05:00+00:00")
        );
        assert_eq!(
            instant("2025-01-25 21:05").as_deref(),
            Some("2025-01-25T20:05:00+00:00")
        );
        // 30 March 2025: clocks went from 02:00 to 03:00.
        assert_eq!(instant("2025-03-30 02:30"), None);
        // 26 October 2025: 02:30 happened twice, first at +02:00.
        assert_eq!(
            instant("2025-10-26 02:30").as_deref(),
            Some("2025-10-26T00:30:00+00:00")
        );
        let both = berlin.from_local_datetime(&local("2025-10-26 02:30"));
        assert_eq!(
            both.latest()
                .map(|date| date.format("%Z").to_string())
                .as_deref(),
            Some("CET")
        );
        assert_eq!(
            Zone::UTC
                .from_local_datetime(&local("2025-03-30 02:30"))
                .single()
                .map(|date| date.with_timezone(&Utc).to_rfc3339())
                .as_deref(),
            Some("2025-03-30T02:30:00+00:00")
        );
    }

    #[test]
    fn abbreviations_are_kept_whole_or_cut_at_a_character() {
        assert_eq!(Abbreviation::new("CEST").as_str(), "CEST");
        assert_eq!(Abbreviation::new("+0530").as_str(), "+0530");
        assert_eq!(Abbreviation::new(&"x".repeat(40)).as_str(), "x".repeat(15));
        // 14 ASCII bytes, then a two-byte character that would end past byte 15.
        let long = format!("{}é", "x".repeat(14));
        assert_eq!(Abbreviation::new(&long).as_str(), "x".repeat(14));
    }

    #[test]
    fn times_beyond_the_databases_years_do_not_panic() {
        let berlin = Zone::named("Europe/Berlin").unwrap();
        let far = NaiveDate::from_ymd_opt(200_000, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        assert!(berlin.from_local_datetime(&far).earliest().is_none());
        assert_eq!(
            berlin
                .offset_from_utc_datetime(&far)
                .fix()
                .local_minus_utc(),
            0
        );
        assert!(
            DateTime::<Utc>::MAX_UTC
                .with_timezone(&berlin)
                .to_string()
                .contains("UTC")
        );
    }
}
