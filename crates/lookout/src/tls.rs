//! TLS 1.3 only, on rustls with the ring provider. Without an operator certificate, a
//! self-signed one is generated on first start into the data directory (mode 0600) and reused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use lookout_api::fsutil::write_private_atomic;

/// Paths of the certificate and key to serve, generating a self-signed pair when needed.
pub fn ensure_certificate(
    data_dir: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<(PathBuf, PathBuf)> {
    if let (Some(c), Some(k)) = (cert, key) {
        return Ok((c.to_path_buf(), k.to_path_buf()));
    }
    let dir = data_dir.join("tls");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            names.push(h.to_string());
        }
    }
    let certified =
        rcgen::generate_simple_self_signed(names).context("generating a certificate")?;
    write_private_atomic(&key_path, certified.signing_key.serialize_pem().as_bytes())
        .with_context(|| format!("writing {}", key_path.display()))?;
    write_private_atomic(&cert_path, certified.cert.pem().as_bytes())
        .with_context(|| format!("writing {}", cert_path.display()))?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed certificate");
    Ok((cert_path, key_path))
}

/// The TLS configuration every listener of this process serves: the operator's certificate, or
/// the self-signed one kept in the data directory.
pub fn listener_config(cfg: &crate::config::Config) -> Result<Arc<ServerConfig>> {
    let (cert, key) = ensure_certificate(
        &cfg.data_dir,
        cfg.tls.cert.as_deref(),
        cfg.tls.key.as_deref(),
    )?;
    server_config(&cert, &key)
}

/// A rustls server configuration that accepts TLS 1.3 and nothing older.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading private key {}", key.display()))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .context("TLS 1.3 with ring")?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, k1) = ensure_certificate(dir.path(), None, None).unwrap();
        let before = std::fs::read(&c1).unwrap();
        let (c2, _) = ensure_certificate(dir.path(), None, None).unwrap();
        assert_eq!(before, std::fs::read(&c2).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for p in [&c1, &k1] {
                assert_eq!(
                    std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
                    0o600
                );
            }
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        server_config(&c1, &k1).unwrap();
    }
}
