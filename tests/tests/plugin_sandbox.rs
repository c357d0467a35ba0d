//! The sandbox: hostile guests get the kind's failure policy (a guardrail
//! fails closed, naming itself), within the deadline, and the chain keeps
//! working for the next request.
//!
//! The `hostile` guest misbehaves in the configured way only when the request
//! text contains "attack", so the next, benign call shows recovery.

use std::time::Instant;

use sluice::plugins::{Decision, RefusalCause};
use sluice_tests::{PluginDir, session, sql};

struct Case {
    mode: &'static str,
    /// Text expected in the refusal's reason.
    reason: &'static str,
    /// The call deadline to run it under. Only the loop needs the default
    /// 50 ms; the others get room so that a slow machine cannot turn their
    /// own failure (memory, stack, …) into a deadline.
    deadline_ms: u64,
}

const ROOMY: u64 = 2000;

const CASES: &[Case] = &[
    Case {
        mode: "loop",
        reason: "exceeded its 50 ms deadline",
        deadline_ms: 50,
    },
    Case {
        mode: "bomb",
        reason: "exceeded its 64 MiB memory limit",
        deadline_ms: ROOMY,
    },
    Case {
        mode: "recursion",
        reason: "overflowed its stack",
        deadline_ms: ROOMY,
    },
    Case {
        mode: "shadow-recursion",
        reason: "out of bounds memory access",
        deadline_ms: ROOMY,
    },
    Case {
        mode: "panic",
        reason: "hostile panic",
        deadline_ms: ROOMY,
    },
    Case {
        mode: "open-file",
        reason: "returned an error",
        deadline_ms: ROOMY,
    },
    Case {
        mode: "read-env",
        reason: "no environment visible",
        deadline_ms: ROOMY,
    },
];

#[tokio::test]
async fn hostile_guardrails_fail_closed_and_the_chain_recovers() {
    let dir = PluginDir::new();
    let mut extra = String::new();
    for case in CASES {
        let name = format!("hostile-{}", case.mode);
        dir.install(&name, "hostile");
        extra.push_str(&format!(
            "[plugins.config.{name}]\nmode = {:?}\n",
            case.mode
        ));
    }
    // Nothing is granted: the gateway's own environment must stay invisible.
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("SLUICE_TEST_SECRET", "hunter2") };
    let default_host = dir.host(&extra).await;
    let roomy_host = dir
        .host(&format!("call_deadline_ms = {ROOMY}\n{extra}"))
        .await;
    let who = session("agent-1", &["agents"]);

    for case in CASES {
        let host = match case.deadline_ms {
            ROOMY => &roomy_host,
            _ => &default_host,
        };
        let name = format!("hostile-{}", case.mode);
        let chain = host
            .chain(std::slice::from_ref(&name))
            .unwrap_or_else(|r| panic!("{name}: {r}"));

        let started = Instant::now();
        let decision = chain.check(&who, &sql("select 'attack'")).await;
        let took = started.elapsed();
        let Decision::Deny(refusal) = decision else {
            panic!("{name}: a hostile guardrail must deny, got {decision:?}");
        };
        assert_eq!(refusal.cause, RefusalCause::PluginFailure, "{name}");
        assert_eq!(refusal.plugin, name);
        assert!(
            refusal.reason.contains(case.reason),
            "{name}: reason {:?} should mention {:?}",
            refusal.reason,
            case.reason
        );
        let message = refusal.to_string();
        assert!(message.contains(&name), "{message}");
        assert!(
            !message.contains("root:"),
            "file contents leaked: {message}"
        );
        assert!(
            !message.contains("hunter2"),
            "environment leaked: {message}"
        );
        eprintln!("{name}: refused after {took:?}: {message}");

        // The same chain serves the next request.
        for _ in 0..3 {
            let next = chain.check(&who, &sql("select 1")).await;
            assert!(
                matches!(next, Decision::Allow),
                "{name}: after failure got {next:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_guardrail_that_hangs_in_init_is_not_activated() {
    let dir = PluginDir::new();
    dir.install("slow-init", "hostile");
    let host = dir
        .host("[plugins.config.slow-init]\nmode = \"init-loop\"\n")
        .await;
    assert!(host.get("slow-init").is_none());
    let why = host.why_missing("slow-init");
    assert!(
        why.contains("init failed: exceeded its 1000 ms deadline"),
        "{why}"
    );
}

/// With `reuse_instances = false` every call gets a fresh instance from the
/// cached `InstancePre`; failure handling is the same.
#[tokio::test]
async fn per_call_instances_behave_the_same() {
    let dir = PluginDir::new();
    dir.install("hostile-panic", "hostile");
    let host = dir
        .host("reuse_instances = false\n[plugins.config.hostile-panic]\nmode = \"panic\"\n")
        .await;
    let chain = host.chain(&["hostile-panic".into()]).unwrap();
    let who = session("agent-1", &[]);
    assert!(matches!(
        chain.check(&who, &sql("attack")).await,
        Decision::Deny(_)
    ));
    assert!(matches!(
        chain.check(&who, &sql("select 1")).await,
        Decision::Allow
    ));
}

/// Guest code runs on the session worker's thread. A slow call hands the
/// worker back between epoch ticks, so another session's call on the same
/// (single-threaded) runtime completes while the slow one is still running,
/// instead of waiting for its deadline.
#[tokio::test(flavor = "current_thread")]
async fn a_slow_guardrail_does_not_hold_the_worker() {
    let dir = PluginDir::new();
    dir.install("spinner", "hostile");
    dir.install("quick", "hostile");
    let host = dir
        .host(&format!(
            "call_deadline_ms = {ROOMY}\n[plugins.config.spinner]\nmode = \"loop\"\n\
             [plugins.config.quick]\nmode = \"allow\"\n"
        ))
        .await;
    let slow = host.chain(&["spinner".into()]).unwrap();
    let quick = host.chain(&["quick".into()]).unwrap();
    let who = session("agent-1", &[]);
    // Warm both instances so that neither call pays instantiation.
    assert!(matches!(
        slow.check(&who, &sql("select 1")).await,
        Decision::Allow
    ));
    assert!(matches!(
        quick.check(&who, &sql("select 1")).await,
        Decision::Allow
    ));

    let finished = std::cell::RefCell::new(Vec::new());
    let spin = async {
        let d = slow.check(&who, &sql("select 'attack'")).await;
        finished.borrow_mut().push("slow");
        d
    };
    let other = async {
        // Let the slow call start first.
        tokio::task::yield_now().await;
        let d = quick.check(&who, &sql("select 2")).await;
        finished.borrow_mut().push("quick");
        d
    };
    let (spun, answered) = tokio::join!(spin, other);
    assert!(matches!(spun, Decision::Deny(_)), "{spun:?}");
    assert!(matches!(answered, Decision::Allow), "{answered:?}");
    assert_eq!(
        *finished.borrow(),
        ["quick", "slow"],
        "the quick call waited for the slow one's deadline"
    );
}
