//! The one thing the probe needs from a certificate: its `notAfter`, for
//! `probe_ssl_earliest_cert_expiry`. A few lines of DER walking instead of a
//! full X.509 crate: the path to the field is fixed by RFC 5280 §4.1 and the
//! handshake has already parsed (and, unless skipped, verified) the chain.

/// `notAfter` of a DER-encoded certificate as Unix seconds, or `None` when
/// the bytes are not a certificate this walker understands.
///
/// ```text
/// Certificate ::= SEQUENCE { tbsCertificate TBSCertificate, … }
/// TBSCertificate ::= SEQUENCE {
///     version [0] EXPLICIT Version DEFAULT v1, serialNumber INTEGER,
///     signature AlgorithmIdentifier, issuer Name,
///     validity SEQUENCE { notBefore Time, notAfter Time }, … }
/// ```
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (certificate, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = element(rest)?.2;
    }
    rest = expect(rest, INTEGER)?.1;
    rest = expect(rest, SEQUENCE)?.1;
    rest = expect(rest, SEQUENCE)?.1;
    let (validity, _) = expect(rest, SEQUENCE)?;
    let (_, _, after_not_before) = element(validity)?;
    let (tag, time, _) = element(after_not_before)?;
    parse_time(tag, time)
}

const INTEGER: u8 = 0x02;
const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// `(tag, contents, rest)` of the element at the start of `input`.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // Long form: the low bits say how many length bytes follow (DER: at most 4 here).
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        (bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), rest)
    };
    if rest.len() < length {
        return None;
    }
    let (contents, rest) = rest.split_at(length);
    Some((tag, contents, rest))
}

/// `(contents, rest)` when the element at the start of `input` has `tag`.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, contents, rest) = element(input)?;
    (found == tag).then_some((contents, rest))
}

/// UTCTime `YYMMDDHHMMSSZ` (years 1950–2049) or GeneralizedTime `YYYYMMDDHHMMSSZ`.
fn parse_time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        UTC_TIME if text.len() == 12 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        GENERALIZED_TIME if text.len() == 14 => (text.get(..4)?.parse().ok()?, &text[4..]),
        _ => return None,
    };
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |i: usize| rest.get(i..i + 2).and_then(|s| s.parse::<i64>().ok());
    let (month, day, hour, minute, second) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(not_after: (i32, u8, u8)) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("self-signed").der().to_vec()
    }

    #[test]
    fn reads_not_after_in_utc_and_generalized_time() {
        // 2031-05-17T00:00:00Z and 2051-01-01T00:00:00Z (`date -d … +%s`).
        assert_eq!(not_after(&certificate((2031, 5, 17))), Some(1_936_742_400));
        assert_eq!(not_after(&certificate((2051, 1, 1))), Some(2_556_144_000), "GeneralizedTime from 2050");
        assert_eq!(not_after(&certificate((2000, 2, 29))), Some(951_782_400), "leap day");
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        let good = certificate((2031, 5, 17));
        for cut in [0, 1, 2, 10, 100, good.len() / 2] {
            assert_eq!(not_after(&good[..cut]), None, "truncated at {cut}");
        }
        assert_eq!(not_after(b"\x30\x84\xff\xff\xff\xff"), None);
        assert_eq!(not_after(&[]), None);
        assert_eq!(parse_time(UTC_TIME, b"311317000000Z"), None, "month 13");
        assert_eq!(parse_time(UTC_TIME, b"310517000000"), None, "no Z");
        assert_eq!(parse_time(UTC_TIME, b"991231235959Z"), Some(946_684_799), "1999 from a two-digit year");
    }
}
