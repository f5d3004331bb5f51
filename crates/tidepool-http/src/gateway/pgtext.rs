//! Text forms of PostgreSQL binary values the driver has no JSON-friendly
//! type for without extra crates: `numeric`, `timestamp[tz]` and `date`.

type BoxError = Box<dyn std::error::Error + Sync + Send>;

fn be_u16(raw: &[u8], at: usize) -> Result<u16, BoxError> {
    raw.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| "truncated value".into())
}

/// `numeric` in its exact decimal text form (`-12.340`, `NaN`, `Infinity`).
pub(super) fn numeric(raw: &[u8]) -> Result<String, BoxError> {
    let ndigits = usize::from(be_u16(raw, 0)?);
    let weight = i32::from(be_u16(raw, 2)? as i16);
    let sign = be_u16(raw, 4)?;
    let dscale = usize::from(be_u16(raw, 6)?);
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let mut digits = Vec::with_capacity(ndigits);
    for i in 0..ndigits {
        digits.push(be_u16(raw, 8 + 2 * i)?);
    }
    let digit = |i: i32| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                out.push_str(&digit(i).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut k = 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(weight + k)));
            k += 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    Ok(out)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_DAYS: i64 = 10_957;

/// `date` as `YYYY-MM-DD`.
pub(super) fn date(raw: &[u8]) -> Result<String, BoxError> {
    let b: [u8; 4] = raw.try_into().map_err(|_| "bad date")?;
    let days = i32::from_be_bytes(b);
    match days {
        i32::MAX => return Ok("infinity".into()),
        i32::MIN => return Ok("-infinity".into()),
        _ => {}
    }
    let (y, m, d) = civil(i64::from(days) + PG_EPOCH_DAYS);
    Ok(format!("{y:04}-{m:02}-{d:02}"))
}

/// `timestamp` as `YYYY-MM-DDTHH:MM:SS[.ffffff]`, with `Z` for `timestamptz`.
pub(super) fn timestamp(raw: &[u8], utc: bool) -> Result<String, BoxError> {
    let b: [u8; 8] = raw.try_into().map_err(|_| "bad timestamp")?;
    let micros = i64::from_be_bytes(b);
    match micros {
        i64::MAX => return Ok("infinity".into()),
        i64::MIN => return Ok("-infinity".into()),
        _ => {}
    }
    const DAY: i64 = 86_400_000_000;
    let (y, m, d) = civil(micros.div_euclid(DAY) + PG_EPOCH_DAYS);
    let t = micros.rem_euclid(DAY);
    let (secs, frac) = (t / 1_000_000, t % 1_000_000);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac > 0 {
        s.push_str(&format!(".{frac:06}"));
    }
    if utc {
        s.push('Z');
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [ndigits, weight as u16, sign, dscale] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_print_exactly() {
        assert_eq!(numeric(&num(2, 0, 0, 2, &[12, 3400])).unwrap(), "12.34");
        assert_eq!(numeric(&num(1, -1, 0x4000, 3, &[500])).unwrap(), "-0.050");
        assert_eq!(numeric(&num(2, 1, 0, 0, &[1, 0])).unwrap(), "10000");
        assert_eq!(numeric(&num(0, 0, 0, 0, &[])).unwrap(), "0");
        assert_eq!(numeric(&num(0, 0, 0xC000, 0, &[])).unwrap(), "NaN");
    }

    #[test]
    fn dates_and_timestamps() {
        assert_eq!(date(&0i32.to_be_bytes()).unwrap(), "2000-01-01");
        assert_eq!(date(&(-1i32).to_be_bytes()).unwrap(), "1999-12-31");
        assert_eq!(date(&9190i32.to_be_bytes()).unwrap(), "2025-02-28");
        let micros: i64 = 86_400_000_000 + 3_723_000_042;
        assert_eq!(
            timestamp(&micros.to_be_bytes(), true).unwrap(),
            "2000-01-02T01:02:03.000042Z"
        );
    }
}
