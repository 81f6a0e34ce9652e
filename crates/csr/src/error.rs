//! The CSR and key error type.

/// Why a key or CSR could not be built, loaded, parsed or verified.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A CSR could not be built (a name is not ASCII, or encoding failed).
    #[error("cannot build CSR: {reason}")]
    CsrBuild {
        /// What went wrong.
        reason: String,
    },
    /// The CSR is not valid DER PKCS#10.
    #[error("malformed certificate signing request: {reason}")]
    CsrMalformed {
        /// What is wrong with it.
        reason: String,
    },
    /// The CSR's signature does not verify with its own public key: the requester does not
    /// hold the private key, or the CSR was altered.
    #[error(
        "CSR signature does not verify: the requester must sign the CSR with the key being certified"
    )]
    CsrSignatureInvalid,
    /// The CSR is larger than the configured limit.
    #[error("certificate signing request is {size} bytes; the limit is {max} bytes")]
    CsrTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The private key is encrypted.
    #[error("encrypted private keys are not supported; store the key unencrypted with mode 0600")]
    EncryptedKey,
    /// A key's DER encoding is invalid.
    #[error("invalid {format} private key: {reason}")]
    KeyEncoding {
        /// `PKCS#8` or `SEC1`.
        format: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The random source failed while generating a key.
    #[error("key generation failed: the system random source is unavailable")]
    KeyGeneration,
    /// ring refused the key (for example the public key does not match the private key).
    #[error("private key rejected: {reason}")]
    KeyRejected {
        /// ring's reason.
        reason: String,
    },
    /// The input is not PEM, or has no private key block.
    #[error("invalid PEM: {reason}")]
    Pem {
        /// What is wrong with it.
        reason: String,
    },
    /// The CSR asks for an extension that would change the leaf profile.
    #[error("CSR refused: {reason}")]
    RequestedExtension {
        /// What it asks for.
        reason: String,
    },
    /// Signing failed.
    #[error("signing failed")]
    Signing,
    /// The key is of a type meshid cannot use.
    #[error("unsupported private key type {found}; meshid keys are ECDSA P-256 or P-384")]
    UnsupportedKey {
        /// What was found.
        found: String,
    },
    /// The CSR is signed with an algorithm meshid does not verify.
    #[error("CSR signature algorithm {algorithm} is not supported for a {key} key")]
    UnsupportedSignatureAlgorithm {
        /// The signature algorithm OID.
        algorithm: String,
        /// The key found.
        key: String,
    },
}
