//! The client authentication for each call the gateway makes to its provider's token or
//! revocation endpoint: the configured secret, or a fresh `private_key_jwt` assertion signed
//! through the [`crate::ports::Signer`] port (the key is imported once per isolate).

use super::Gateway;
use super::providers::Provider;
use crate::config::ClientAuth;
use crate::encoding::b64url;
use crate::error::GatewayError;
use crate::oidc::{ClientAuthentication, client_assertion_claims};
use crate::ports::Ports;

impl<P: Ports> Gateway<P> {
    /// How the next request to `provider` authenticates this client (with that provider's
    /// client id and secret or key). The assertion's `aud`
    /// is the token endpoint, also for revocation (RFC 7523 §3 allows it; Entra ID requires it).
    pub(super) async fn client_authentication<'g>(
        &'g self,
        ports: &P,
        provider: &Provider<'g, P>,
        token_endpoint: &str,
    ) -> Result<ClientAuthentication<'g>, GatewayError> {
        let client_id = provider.config.client_id.as_str();
        match &provider.config.client_auth {
            ClientAuth::ClientSecretBasic(secret) => Ok(ClientAuthentication::Basic { client_id, secret }),
            ClientAuth::ClientSecretPost(secret) => Ok(ClientAuthentication::Post { client_id, secret }),
            ClientAuth::PrivateKeyJwt(config) => {
                let mut jti = [0u8; 16];
                ports.fill(&mut jti);
                let (header, claims) =
                    client_assertion_claims(client_id, token_endpoint, config, ports.now_secs(), &b64url(&jti));
                let assertion = provider
                    .client_key
                    .sign(ports, &config.key, &header, &claims)
                    .await
                    .map_err(GatewayError::SigningKeyUnusable)?;
                Ok(ClientAuthentication::Assertion { client_id, assertion })
            }
        }
    }
}
