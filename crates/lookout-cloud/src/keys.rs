//! SSH key pairs: generated here (Ed25519 by default, RSA 3072 on request) in OpenSSH format,
//! or imported from a public key, which is validated. The private key is handed back once
//! and never kept. Fingerprints are printed the way `ssh-keygen -l` prints them
//! (`SHA256:<base64>`).

use ssh_key::public::KeyData;
use ssh_key::rand_core::OsRng;
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey};

use crate::error::{CloudError, CloudResult};

/// Size of generated RSA keys.
pub const RSA_BITS: usize = 3072;
/// Smallest RSA key accepted on import.
pub const RSA_MIN_BITS: usize = 2048;

/// The kind of key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Ed25519,
    Rsa,
}

impl KeyKind {
    /// Reads `key_type`: absent, empty, `ssh` (Nova's default name) and `ed25519` give
    /// Ed25519; `rsa` gives RSA 3072. Anything else (`x509`, …) is refused.
    pub fn from_request(key_type: Option<&str>) -> CloudResult<KeyKind> {
        match key_type.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("ssh") | Some("ed25519") | Some("ssh-ed25519") => {
                Ok(KeyKind::Ed25519)
            }
            Some("rsa") | Some("ssh-rsa") => Ok(KeyKind::Rsa),
            Some(other) => Err(CloudError::invalid(
                "key_pair.key_type",
                format!("{other:?} is not supported (use ssh, ed25519 or rsa)"),
            )),
        }
    }
}

/// A key pair as handed back to the caller.
#[derive(Debug, Clone)]
pub struct MadeKey {
    /// OpenSSH private key; `None` for an imported public key.
    pub private_key: Option<String>,
    /// `authorized_keys` line: `<algorithm> <base64> <comment>`.
    pub public_key: String,
    pub fingerprint: String,
    /// `ssh-ed25519`, `ssh-rsa`, …
    pub algorithm: String,
}

/// Generates a key pair whose comment is `comment`.
pub fn generate(kind: KeyKind, comment: &str) -> CloudResult<MadeKey> {
    let mut private = match kind {
        KeyKind::Ed25519 => PrivateKey::random(&mut OsRng, ssh_key::Algorithm::Ed25519),
        KeyKind::Rsa => ssh_key::private::RsaKeypair::random(&mut OsRng, RSA_BITS)
            .and_then(|k| PrivateKey::new(k.into(), comment)),
    }
    .map_err(|e| CloudError::Internal(format!("generating a key pair: {e}")))?;
    private.set_comment(comment);
    let private_pem = private
        .to_openssh(LineEnding::LF)
        .map_err(|e| CloudError::Internal(format!("encoding a private key: {e}")))?;
    let public = private.public_key();
    Ok(MadeKey {
        private_key: Some(private_pem.to_string()),
        public_key: public
            .to_openssh()
            .map_err(|e| CloudError::Internal(format!("encoding a public key: {e}")))?,
        fingerprint: public.fingerprint(HashAlg::Sha256).to_string(),
        algorithm: public.algorithm().as_str().to_string(),
    })
}

/// Validates an imported public key (`authorized_keys` format) and fingerprints it. The
/// comment is replaced by `comment` when the key has none.
pub fn import(public_key: &str, comment: &str) -> CloudResult<MadeKey> {
    let text = public_key.trim();
    if text.contains('\n') {
        return Err(CloudError::invalid(
            "key_pair.public_key",
            "must be a single OpenSSH public key line",
        ));
    }
    let mut key = PublicKey::from_openssh(text).map_err(|e| {
        CloudError::invalid(
            "key_pair.public_key",
            format!("is not a valid OpenSSH public key ({e})"),
        )
    })?;
    match key.key_data() {
        KeyData::Ed25519(_) => {}
        KeyData::Rsa(rsa) => {
            let bits = rsa.n.as_positive_bytes().map(|b| b.len() * 8).unwrap_or(0);
            if bits < RSA_MIN_BITS {
                return Err(CloudError::invalid(
                    "key_pair.public_key",
                    format!("is an RSA key of {bits} bits; at least {RSA_MIN_BITS} are needed"),
                ));
            }
        }
        KeyData::SkEd25519(_) => {}
        _ => {
            return Err(CloudError::invalid(
                "key_pair.public_key",
                format!("uses {} which is not accepted", key.algorithm().as_str()),
            ))
        }
    }
    if key.comment().is_empty() {
        key.set_comment(comment);
    }
    Ok(MadeKey {
        private_key: None,
        public_key: key
            .to_openssh()
            .map_err(|e| CloudError::Internal(format!("encoding a public key: {e}")))?,
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        algorithm: key.algorithm().as_str().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ed25519_imports_back_with_the_same_fingerprint() {
        let k = generate(KeyKind::Ed25519, "laptop").unwrap();
        assert!(k
            .private_key
            .as_deref()
            .unwrap()
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        assert!(k.public_key.starts_with("ssh-ed25519 "));
        assert!(k.public_key.ends_with(" laptop"));
        assert!(k.fingerprint.starts_with("SHA256:"));
        let again = import(&k.public_key, "x").unwrap();
        assert_eq!(again.fingerprint, k.fingerprint);
        assert!(again.private_key.is_none());
    }

    #[test]
    fn refuses_garbage_and_unknown_types() {
        assert!(import("ssh-ed25519 AAAA", "c").is_err());
        assert!(import("not a key", "c").is_err());
        assert!(KeyKind::from_request(Some("x509")).is_err());
        assert_eq!(
            KeyKind::from_request(Some("ssh")).unwrap(),
            KeyKind::Ed25519
        );
        assert_eq!(KeyKind::from_request(Some("rsa")).unwrap(), KeyKind::Rsa);
    }
}
