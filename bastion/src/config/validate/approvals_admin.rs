//! Stage two for `[approvals]` (timeouts, webhooks and their transport rule) and `[admin]` (the
//! optional TCP + TLS listener of the admin API). A webhook that would send step-up requests in
//! clear text to another machine is refused here, so `bastion check` and `serve` both stop on it.
use super::super::raw::{RawAdmin, RawConfig};
use super::*;

impl Validator<'_> {
    pub(super) fn approvals(&mut self, raw: &RawConfig) -> Result<Approvals, ConfigError> {
        let a = &raw.approvals;
        let allow_insecure_webhooks = a.allow_insecure_webhooks.unwrap_or(false);
        let mut webhooks = Vec::new();
        for url in &a.webhooks {
            if let Err(e) =
                crate::broker::webhook::check_url(url.get_ref(), allow_insecure_webhooks)
            {
                return self.err(url.span(), format!("approvals.webhooks: {e}"));
            }
            webhooks.push(url.get_ref().clone());
        }
        if allow_insecure_webhooks && webhooks.iter().any(|u| u.starts_with("http://")) {
            self.warnings.push(
                "approvals.allow_insecure_webhooks = true: step-up requests go to http:// webhooks unencrypted".into(),
            );
        }
        let webhook_ca = match &a.webhook_ca {
            None => None,
            Some(ca) => {
                let path = self.path(ca.get_ref());
                if let Err(e) = crate::admin::tls_client::roots_from_pem_file(&path) {
                    return self.err(ca.span(), format!("approvals.webhook_ca: {e}"));
                }
                Some(path)
            }
        };
        Ok(Approvals {
            timeout: self.duration(&a.timeout, "approvals.timeout", Duration::from_secs(300))?,
            otp_fresh_for: self.duration(
                &a.otp_fresh_for,
                "approvals.otp_fresh_for",
                Duration::from_secs(300),
            )?,
            webhooks,
            webhook_ca,
            allow_insecure_webhooks,
        })
    }

    pub(super) fn admin_api(
        &mut self,
        raw: &RawConfig,
        server: &Server,
    ) -> Result<AdminApi, ConfigError> {
        let RawAdmin {
            listen,
            tls_cert,
            tls_key,
        } = &raw.admin;
        let addr = self.socket_addr(listen, "admin.listen")?;
        if let (Some(addr), Some(spanned)) = (addr, listen) {
            if addr.port() != 0 && [server.postgres_listen, server.ssh_listen].contains(&Some(addr))
            {
                return self.err(
                    spanned.span(),
                    format!("admin.listen: {addr} is already a postgres or ssh listener"),
                );
            }
        }
        let tls = match (tls_cert, tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let cert_path = self.path(cert.get_ref());
                let pem = std::fs::read(&cert_path).or_else(|e| {
                    self.err(
                        cert.span(),
                        format!("admin.tls_cert: cannot read {}: {e}", cert_path.display()),
                    )
                })?;
                if !rustls_pemfile::certs(&mut pem.as_slice()).any(|c| c.is_ok()) {
                    return self.err(
                        cert.span(),
                        format!(
                            "admin.tls_cert: {} holds no PEM certificate",
                            cert_path.display()
                        ),
                    );
                }
                let (key_ref, key_secret) = self.loaded_secret(key, "admin.tls_key")?;
                if !matches!(
                    rustls_pemfile::private_key(&mut key_secret.expose()),
                    Ok(Some(_))
                ) {
                    return self.err(
                        key.span(),
                        format!("admin.tls_key: {key_ref} holds no PEM private key"),
                    );
                }
                Some(TlsFiles {
                    cert: cert_path,
                    key: key_ref,
                })
            }
            (Some(v), None) | (None, Some(v)) => {
                return self.err(
                    v.span(),
                    "admin.tls_cert and admin.tls_key go together: set both, or neither to use the bastion's own certificate",
                )
            }
        };
        if tls.is_some() && addr.is_none() {
            self.warnings.push(
                "admin.tls_cert is set but admin.listen is not: the admin API listens on its Unix socket only".into(),
            );
        }
        Ok(AdminApi { listen: addr, tls })
    }
}
