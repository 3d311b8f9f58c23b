//! Request header checks: a header that would corrupt the request is a 401 at create time.

use crate::error::{Error, Result};

/// A header name must be an RFC 9110 token; a value must not hold CR, LF or NUL.
pub fn check_header(name: &str, value: &str) -> Result<()> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(Error::param(format!(
            "header name {name:?} is not a valid HTTP token"
        )));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(Error::param(format!(
            "header {name} has a value with CR, LF or NUL"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_rules() {
        assert!(check_header("X-Key", "v a l").is_ok());
        assert!(check_header("X-Key", "").is_ok());
        assert!(check_header("", "v").is_err());
        assert!(check_header("X Key", "v").is_err());
        assert!(check_header("X:Key", "v").is_err());
        assert!(check_header("X-Key", "a\r\nInjected: 1").is_err());
        assert!(check_header("X-Key", "a\nb").is_err());
    }
}
