pub mod cmd_token;
pub mod identity;
