//! Floor view logins: a supervisor posts a tenant credential once; the answer
//! is a signed, expiring, HttpOnly, SameSite=Strict cookie naming the tenant,
//! the key's id (never the key) and the page language. Every request checks
//! the signature, the expiry, and that the key is still one of the tenant's,
//! so removing a key from the tenant ends its sessions.

use std::time::Duration;

use careline_bus::TenantDirectory;
use careline_domain::TenantConfig;
use careline_domain::tenant::Scope;
use careline_kit::TenantAuth;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Name of the session cookie.
pub const COOKIE: &str = "careline_floor";
/// Bytes of a generated signing secret.
pub const SECRET_BYTES: usize = 32;
/// Longest cookie value read.
const MAX_COOKIE_LEN: usize = 1024;

/// The page languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Es,
}

impl Lang {
    /// `en` or `es`; anything else is English.
    pub fn parse(text: &str) -> Lang {
        if text.eq_ignore_ascii_case("es") {
            Lang::Es
        } else {
            Lang::En
        }
    }

    /// The BCP 47 tag.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }
}

/// Who a valid floor view credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervisor {
    pub tenant: String,
    /// The id of the tenant API key that logged in.
    pub key_id: String,
}

/// Scopes that open the floor view (or `admin`).
pub const FLOOR_SCOPES: &[Scope] = &[Scope::Supervisor];

/// The one check of a floor view credential: the tenant and key a raw API
/// key belongs to, if the key has the `supervisor` (or `admin`) scope.
pub fn supervisor_for_key(auth: &TenantAuth, raw_key: &str) -> Option<Supervisor> {
    let caller = auth.caller_for_key(raw_key)?;
    caller.require(FLOOR_SCOPES).ok()?;
    Some(Supervisor {
        tenant: caller.tenant,
        key_id: caller.key_id,
    })
}

/// Whether the key a session was opened with still opens the floor view
/// (a key removed or its scope withdrawn ends its sessions).
fn key_still_allowed(config: &TenantConfig, key_id: &str) -> bool {
    config
        .api_keys
        .iter()
        .any(|key| key.id == key_id && Scope::permits(&key.scopes, FLOOR_SCOPES))
}

/// A logged-in viewer, as the cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub supervisor: Supervisor,
    pub lang: Lang,
    pub expires_ms: i64,
}

/// Signs and checks session cookies.
#[derive(Clone)]
pub struct Sessions {
    secret: Vec<u8>,
    lifetime: Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

impl Sessions {
    /// Cookies signed with `secret` (random when empty: sessions then last
    /// as long as this process and work on this replica only).
    pub fn new(secret: &str, lifetime: Duration) -> Self {
        let secret = if secret.is_empty() {
            let bytes: [u8; SECRET_BYTES] = rand::random();
            bytes.to_vec()
        } else {
            secret.as_bytes().to_vec()
        };
        Self { secret, lifetime }
    }

    /// How long a session lasts.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key");
        mac.update(payload);
        mac
    }

    /// The cookie value of a new session for `supervisor`, from `now_ms`.
    pub fn issue(&self, supervisor: &Supervisor, lang: Lang, now_ms: i64) -> String {
        let expires_ms = now_ms + i64::try_from(self.lifetime.as_millis()).unwrap_or(i64::MAX);
        let payload = format!(
            "{}\n{}\n{}\n{expires_ms}",
            supervisor.tenant,
            supervisor.key_id,
            lang.tag()
        );
        let tag = self.mac(payload.as_bytes()).finalize().into_bytes();
        format!("{}.{}", hex::encode(payload), hex::encode(tag))
    }

    /// The session in `cookie`, if it is ours, unexpired and its key still
    /// belongs to the tenant.
    pub fn check(&self, cookie: &str, tenants: &TenantDirectory, now_ms: i64) -> Option<Session> {
        if cookie.len() > MAX_COOKIE_LEN {
            return None;
        }
        let (payload, tag) = cookie.split_once('.')?;
        let payload = hex::decode(payload).ok()?;
        self.mac(&payload)
            .verify_slice(&hex::decode(tag).ok()?)
            .ok()?;
        let payload = String::from_utf8(payload).ok()?;
        let mut parts = payload.split('\n');
        let (tenant, key_id, lang, expires) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let expires_ms: i64 = expires.parse().ok()?;
        if expires_ms <= now_ms || !key_still_allowed(&*tenants.get(tenant)?, key_id) {
            return None;
        }
        Some(Session {
            supervisor: Supervisor {
                tenant: tenant.to_owned(),
                key_id: key_id.to_owned(),
            },
            lang: Lang::parse(lang),
            expires_ms,
        })
    }
}
