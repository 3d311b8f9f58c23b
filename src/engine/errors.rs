//! CURLcode → Reason, and which failures are worth a quick retry (reference C.6).

use crate::task::Reason;
use curl_sys as sys;

/// The reason a transport failure reports (after retries ran out).
pub fn reason_for_curl(code: sys::CURLcode, got_response: bool, min_speed_rule: bool) -> Reason {
    match code {
        sys::CURLE_COULDNT_RESOLVE_HOST | sys::CURLE_COULDNT_RESOLVE_PROXY => Reason::Dns,
        sys::CURLE_COULDNT_CONNECT => Reason::Tcp,
        sys::CURLE_SSL_CONNECT_ERROR
        | sys::CURLE_PEER_FAILED_VERIFICATION
        | sys::CURLE_SSL_CERTPROBLEM
        | sys::CURLE_SSL_CIPHER
        | sys::CURLE_SSL_CACERT_BADFILE
        | sys::CURLE_SSL_PINNEDPUBKEYNOTMATCH
        | sys::CURLE_SSL_ISSUER_ERROR
        | sys::CURLE_SSL_INVALIDCERTSTATUS
        | sys::CURLE_SSL_CRL_BADFILE
        | sys::CURLE_SSL_ENGINE_NOTFOUND
        | sys::CURLE_SSL_ENGINE_SETFAILED
        | sys::CURLE_SSL_SHUTDOWN_FAILED
        | sys::CURLE_USE_SSL_FAILED => Reason::Ssl,
        sys::CURLE_OPERATION_TIMEDOUT if got_response && min_speed_rule => Reason::LowSpeed,
        sys::CURLE_OPERATION_TIMEDOUT => Reason::ContinuousTaskTimeout,
        sys::CURLE_TOO_MANY_REDIRECTS => Reason::RedirectError,
        sys::CURLE_URL_MALFORMAT | sys::CURLE_UNSUPPORTED_PROTOCOL => Reason::BuildRequestFailed,
        sys::CURLE_OUT_OF_MEMORY | sys::CURLE_FAILED_INIT => Reason::BuildClientFailed,
        sys::CURLE_SEND_ERROR if !got_response => Reason::RequestError,
        _ => Reason::OthersError,
    }
}

/// Connect and body-transfer errors get up to 4 quick retries; timeouts and certificate
/// failures do not (reference C.6, B.1).
pub fn is_retryable(code: sys::CURLcode) -> bool {
    matches!(
        code,
        sys::CURLE_COULDNT_RESOLVE_HOST
            | sys::CURLE_COULDNT_CONNECT
            | sys::CURLE_SSL_CONNECT_ERROR
            | sys::CURLE_SEND_ERROR
            | sys::CURLE_RECV_ERROR
            | sys::CURLE_PARTIAL_FILE
            | sys::CURLE_GOT_NOTHING
            | sys::CURLE_HTTP2
            | sys::CURLE_HTTP2_STREAM
    )
}

/// Whether an I/O error means the disk is full.
pub fn is_no_space(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_distinguishes_kinds() {
        assert_eq!(
            reason_for_curl(sys::CURLE_COULDNT_RESOLVE_HOST, false, false),
            Reason::Dns
        );
        assert_eq!(
            reason_for_curl(sys::CURLE_COULDNT_CONNECT, false, false),
            Reason::Tcp
        );
        assert_eq!(
            reason_for_curl(sys::CURLE_PEER_FAILED_VERIFICATION, false, false),
            Reason::Ssl
        );
        assert_eq!(
            reason_for_curl(sys::CURLE_OPERATION_TIMEDOUT, true, true),
            Reason::LowSpeed
        );
        assert_eq!(
            reason_for_curl(sys::CURLE_OPERATION_TIMEDOUT, false, true),
            Reason::ContinuousTaskTimeout
        );
        assert_eq!(
            reason_for_curl(sys::CURLE_TOO_MANY_REDIRECTS, true, false),
            Reason::RedirectError
        );
        assert_eq!(
            reason_for_curl(sys::CURLE_RECV_ERROR, true, false),
            Reason::OthersError
        );
        assert!(is_retryable(sys::CURLE_PARTIAL_FILE));
        assert!(!is_retryable(sys::CURLE_OPERATION_TIMEDOUT));
        assert!(!is_retryable(sys::CURLE_PEER_FAILED_VERIFICATION));
    }
}
