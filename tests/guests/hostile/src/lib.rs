//! Test guest: a guardrail that misbehaves as its config `{"mode": "…"}` asks,
//! so the gateway's tests can show that each misbehaviour is contained.
//!
//! Modes that always answer: `allow`, `deny` (rule "hostile"), `approve`
//! (requires approval, rule "hostile"). Modes that misbehave in check, but
//! only for a request whose text (SQL, HTTP path or shell command) contains
//! `attack`, and allow anything else so that tests can show recovery: `loop`
//! (spins), `bomb` (allocates until allocation fails, which aborts),
//! `recursion` (overflows the engine's wasm stack), `shadow-recursion`
//! (overflows the shadow stack Rust keeps in linear memory), `panic` ("hostile panic"), `open-file`
//! (reads /etc/passwd), `read-env` (reads the environment), `sleep` (waits
//! 10 s on a WASI timer, in the host), `http-get` (GETs the config's `url`
//! through wasi:http and denies with the status it got, or fails with the
//! error code). `init-loop` spins in init. Any other mode fails init.

use std::hint::black_box;

use serde::Deserialize;
use sluice_plugin_sdk::types::{Request, Session, Verdict};
use sluice_plugin_sdk::{Guardrail, export_guardrail, log};

#[derive(Deserialize)]
pub struct Config {
    mode: String,
    #[serde(default)]
    url: String,
}

enum Mode {
    Allow,
    Deny,
    Approve,
    Loop,
    Bomb,
    Recursion,
    ShadowRecursion,
    Panic,
    OpenFile,
    ReadEnv,
    Sleep,
    HttpGet,
}

pub struct Hostile {
    mode: Mode,
    url: String,
}

impl Guardrail for Hostile {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let mode = match config.mode.as_str() {
            "allow" => Mode::Allow,
            "deny" => Mode::Deny,
            "approve" => Mode::Approve,
            "loop" => Mode::Loop,
            "bomb" => Mode::Bomb,
            "recursion" => Mode::Recursion,
            "shadow-recursion" => Mode::ShadowRecursion,
            "panic" => Mode::Panic,
            "open-file" => Mode::OpenFile,
            "read-env" => Mode::ReadEnv,
            "sleep" => Mode::Sleep,
            "http-get" => Mode::HttpGet,
            "init-loop" => spin(),
            other => return Err(format!("hostile: unknown mode `{other}`")),
        };
        Ok(Hostile {
            mode,
            url: config.url,
        })
    }

    fn check(&self, _: &Session, request: &Request) -> Result<Verdict, String> {
        let text = match request {
            Request::Sql(sql) => &sql.text,
            Request::Http(http) => &http.path,
            Request::Shell(shell) => &shell.command,
        };
        let attack = text.contains("attack");
        match self.mode {
            Mode::Allow => Ok(Verdict::allow()),
            Mode::Deny => Ok(Verdict::deny("hostile", "denied by hostile")),
            Mode::Approve => Ok(Verdict::require_approval(
                "hostile",
                "approval required by hostile",
            )),
            _ if !attack => Ok(Verdict::allow()),
            Mode::Loop => spin(),
            Mode::Bomb => bomb(),
            Mode::Recursion => Ok(Verdict::deny("hostile", format!("recursed {}", recurse(0)))),
            Mode::ShadowRecursion => Ok(Verdict::deny(
                "hostile",
                format!("recursed {}", recurse_with_frame(0)),
            )),
            Mode::Panic => panic!("hostile panic"),
            Mode::OpenFile => open_file(),
            Mode::ReadEnv => read_env(),
            Mode::Sleep => {
                std::thread::sleep(std::time::Duration::from_secs(10));
                Ok(Verdict::allow())
            }
            Mode::HttpGet => http_get(&self.url),
        }
    }
}

/// Never returns; `black_box` keeps the optimiser from proving the loop
/// side-effect free.
fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

/// Allocates 4 MiB chunks and touches one byte per page, so the memory is
/// really used, until growing fails. Touching every byte would spend most
/// of the call deadline on writes, and a slow machine could then report the
/// deadline instead of the memory limit.
fn bomb() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = Vec::<u8>::with_capacity(4 << 20);
        for page in (0..chunk.capacity()).step_by(4096) {
            chunk.spare_capacity_mut()[page].write(0xA5);
        }
        hoard.push(black_box(chunk));
    }
}

/// Non-tail recursion whose frames hold only wasm locals, so it exhausts the
/// engine's wasm stack. The result of the call is used afterwards, so it
/// cannot become a loop; the `u64::MAX` exit is never reached, it only keeps
/// the lint for endless recursion quiet.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(black_box(depth + 1)).wrapping_mul(3) ^ depth
}

/// Non-tail recursion with an addressable array per frame: Rust keeps it on
/// the shadow stack in linear memory, which runs out before the wasm stack.
#[inline(never)]
fn recurse_with_frame(depth: u64) -> u64 {
    let frame = black_box([depth as u8; 256]);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse_with_frame(black_box(depth + 1)).wrapping_add(u64::from(frame[(depth % 256) as usize]))
}

fn open_file() -> Result<Verdict, String> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    log::warn(&format!("hostile read /etc/passwd: {passwd}"));
    Ok(Verdict::allow())
}

fn read_env() -> Result<Verdict, String> {
    let home = std::env::var("HOME").ok();
    let count = std::env::vars().count();
    if home.is_none() && count == 0 {
        return Err("no environment visible".into());
    }
    log::warn(&format!(
        "hostile sees {count} environment variables, HOME={home:?}"
    ));
    Ok(Verdict::allow())
}

/// A GET through the host's wasi:http. `url` is `http://host:port/path`.
fn http_get(url: &str) -> Result<Verdict, String> {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{Fields, OutgoingRequest, Scheme};

    let rest = url
        .strip_prefix("http://")
        .ok_or("hostile: url must be http://")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let request = OutgoingRequest::new(Fields::new());
    let set = request
        .set_scheme(Some(&Scheme::Http))
        .and_then(|()| request.set_authority(Some(authority)))
        .and_then(|()| request.set_path_with_query(Some(path)));
    set.map_err(|()| format!("hostile: bad url {url}"))?;
    let pending =
        outgoing_handler::handle(request, None).map_err(|e| format!("http error {e:?}"))?;
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(response))) => Ok(Verdict::deny(
            "hostile",
            format!("http status {}", response.status()),
        )),
        Some(Ok(Err(code))) => Err(format!("http error {code:?}")),
        _ => Err("http error: no response".into()),
    }
}

export_guardrail!(Hostile);
