//! Browser-side state (sealed cookies) and the server-side session record.

pub mod cookie;
mod keys;
mod opened;
mod record;
mod transaction;

pub use keys::{Purpose, SessionKeys};
pub use opened::{MAX_OPENED_COOKIES, OpenedCookies};
pub use record::{Identity, SessionCookie, SessionId, SessionRecord};
pub use transaction::{
    LoginTransaction, TX_TTL_SECS, binding_cookie_name, cleanup_cookies, new_binding, random_nonce, random_token,
};
