//! What every rustls certificate verifier of meshid shares: checking the handshake signature
//! with the crypto provider's algorithms. The chain itself is verified by [`verify_chain`]
//! (crate::verify_chain); this is the other half of a verifier, the same for all of them.

/// Implements `verify_tls12_signature`, `verify_tls13_signature` and
/// `supported_verify_schemes` of rustls's `ServerCertVerifier` or `ClientCertVerifier` with
/// the `rustls::crypto::WebPkiSupportedAlgorithms` in the field `$algorithms` of `self`, the
/// way rustls's own WebPKI verifiers do. Needs the `rustls` feature.
///
/// ```
/// use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
/// use rustls::crypto::WebPkiSupportedAlgorithms;
/// use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
///
/// #[derive(Debug)]
/// struct Refuse {
///     algorithms: WebPkiSupportedAlgorithms,
/// }
///
/// impl ServerCertVerifier for Refuse {
///     fn verify_server_cert(
///         &self,
///         _: &CertificateDer<'_>,
///         _: &[CertificateDer<'_>],
///         _: &ServerName<'_>,
///         _: &[u8],
///         _: UnixTime,
///     ) -> Result<ServerCertVerified, rustls::Error> {
///         Err(rustls::Error::General("refused".into()))
///     }
///
///     meshid_verify::handshake_signatures!(algorithms);
/// }
///
/// let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
/// let verifier = Refuse { algorithms };
/// assert!(!verifier.supported_verify_schemes().is_empty());
/// ```
#[macro_export]
macro_rules! handshake_signatures {
    ($algorithms:ident) => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &$crate::__rustls::pki_types::CertificateDer<'_>,
            dss: &$crate::__rustls::DigitallySignedStruct,
        ) -> ::core::result::Result<
            $crate::__rustls::client::danger::HandshakeSignatureValid,
            $crate::__rustls::Error,
        > {
            $crate::__rustls::crypto::verify_tls12_signature(message, cert, dss, &self.$algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &$crate::__rustls::pki_types::CertificateDer<'_>,
            dss: &$crate::__rustls::DigitallySignedStruct,
        ) -> ::core::result::Result<
            $crate::__rustls::client::danger::HandshakeSignatureValid,
            $crate::__rustls::Error,
        > {
            $crate::__rustls::crypto::verify_tls13_signature(message, cert, dss, &self.$algorithms)
        }

        fn supported_verify_schemes(&self) -> ::std::vec::Vec<$crate::__rustls::SignatureScheme> {
            self.$algorithms.supported_schemes()
        }
    };
}
