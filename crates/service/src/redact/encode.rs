//! The forms a known secret value takes when an agent prints it encoded: base64
//! (inside a longer blob too, as in `Authorization: Basic base64(user:password)`),
//! URL encoding, and the escaped form inside a JSON string.

/// The shortest encoded form worth looking for: shorter ones would match by chance.
const MIN_FORM_LEN: usize = 8;

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Every form of `value` to redact: the value itself, then its encodings, without
/// duplicates or encodings too short to be told from chance.
pub(super) fn forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_owned()];
    for alphabet in [STANDARD, URL_SAFE] {
        for offset in 0..3 {
            forms.push(base64_core(value.as_bytes(), offset, alphabet));
        }
    }
    forms.push(percent_encoded(value, false, b"0123456789ABCDEF"));
    forms.push(percent_encoded(value, false, b"0123456789abcdef"));
    forms.push(percent_encoded(value, true, b"0123456789ABCDEF"));
    if let Ok(quoted) = serde_json::to_string(value) {
        forms.push(quoted[1..quoted.len() - 1].to_owned());
    }
    let mut unique: Vec<String> = Vec::with_capacity(forms.len());
    for (index, form) in forms.into_iter().enumerate() {
        // The value itself counts at any length; an encoding only when long.
        let long_enough = if index == 0 {
            !form.is_empty()
        } else {
            form.len() >= MIN_FORM_LEN
        };
        if long_enough && !unique.contains(&form) {
            unique.push(form);
        }
    }
    unique
}

/// The base64 characters that encode `value` alone when it starts `offset`
/// bytes (0, 1 or 2) past a multiple of three in a longer encoded blob: the
/// characters shared with the neighbouring bytes are left out, so the core is
/// found whatever surrounds the value.
fn base64_core(value: &[u8], offset: usize, alphabet: &[u8; 64]) -> String {
    let mut bytes = vec![0u8; offset];
    bytes.extend_from_slice(value);
    let encoded = base64(&bytes, alphabet);
    let first = (8 * offset).div_ceil(6);
    let last = (8 * (offset + value.len())) / 6;
    if first >= last {
        return String::new();
    }
    encoded[first..last].to_owned()
}

/// Unpadded base64 of `bytes`.
fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = group.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(alphabet[index as usize]));
        }
    }
    out
}

/// `value` URL-encoded: every byte outside the unreserved set as `%XX` (or a
/// space as `+` in the form encoding).
fn percent_encoded(value: &str, form: bool, hex: &[u8; 16]) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for &byte in value.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' if form => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(hex[usize::from(byte >> 4)]));
                out.push(char::from(hex[usize::from(byte & 0xf)]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_encoding() {
        assert_eq!(base64(b"", STANDARD), "");
        assert_eq!(base64(b"f", STANDARD), "Zg");
        assert_eq!(base64(b"fo", STANDARD), "Zm8");
        assert_eq!(base64(b"foo", STANDARD), "Zm9v");
        assert_eq!(base64(b"foobar", STANDARD), "Zm9vYmFy");
        assert_eq!(base64(&[0xfb, 0xff], URL_SAFE), "-_8");
    }

    #[test]
    fn a_base64_core_is_found_in_any_blob_that_holds_the_value() {
        let value = "hunter2-hunter2-xyz";
        let cores: Vec<String> = (0..3)
            .map(|offset| base64_core(value.as_bytes(), offset, STANDARD))
            .collect();
        for prefix in ["", "u", "us", "user:", "admin:", "x:"] {
            for suffix in ["", "!", "\n", "tail"] {
                let blob = base64(format!("{prefix}{value}{suffix}").as_bytes(), STANDARD);
                assert!(
                    cores.iter().any(|core| blob.contains(core.as_str())),
                    "{prefix:?}+value+{suffix:?}: {blob} holds none of {cores:?}"
                );
            }
        }
        assert!(cores.iter().all(|core| core.len() >= value.len()));
    }

    #[test]
    fn url_and_json_forms_are_listed_once() {
        let forms = forms("p@ss word/\"x\"");
        assert!(forms.contains(&"p%40ss%20word%2F%22x%22".to_owned()));
        assert!(forms.contains(&"p%40ss+word%2F%22x%22".to_owned()));
        assert!(forms.contains(&"p%40ss%20word%2f%22x%22".to_owned()));
        assert!(forms.contains(&r#"p@ss word/\"x\""#.to_owned()));
        let plain = super::forms("abcdefgh12345678");
        assert_eq!(plain[0], "abcdefgh12345678");
        let mut unique = plain.clone();
        unique.dedup();
        assert_eq!(plain.len(), unique.len());
        assert_eq!(
            plain.len(),
            1 + 3,
            "no URL, JSON or second base64 form: {plain:?}"
        );
    }
}
