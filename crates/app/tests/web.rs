//! The web app in real browsers: headless Chromium windows driven through
//! `WebDriver`, used as people use them. A host signs in on the start page and
//! creates a session; a guest (at phone width) opens the invite link, joins,
//! comments and suggests a prompt; the host approves it; both watch the echo
//! agent's answer stream in; the host answers a permission request, switches
//! the agent's mode and runs one of its commands (whose secrets show redacted,
//! with a note saying so); the server
//! restarts mid-stream and both pages recover with every event once; the host
//! makes the guest a viewer (the guest's composer locks) and removes them (the
//! guest's page says so). Another test fills a session with markup and script
//! from people and the agent and proves none of it runs.
//!
//! Needs `chromium` and `chromedriver` on PATH (`scripts/ensure-chromium`
//! installs both; `scripts/test` runs it first).

mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Client, text};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use webdriver::{Browser, Driver};

const ADMIN_KEY: &str = "tandem-web-test-admin-key-0123456789abcdef";

/// A Tandem server on a fixed address, stopped gracefully by [`Running::stop`].
struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts Tandem on `addr` over the SQLite file in `dir` (the same address and
/// database again after a stop: a restart).
async fn start(addr: SocketAddr, dir: &Path) -> Running {
    let mut attempts = 0;
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => break listener,
            Err(error) if attempts < 50 => {
                attempts += 1;
                eprintln!("{addr} is not free yet ({error}); retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("cannot listen on {addr} again: {error}"),
        }
    };
    let url = format!("sqlite://{}", dir.join("tandem.db").display());
    let mut config = support::config(addr, url);
    config.bootstrap_admin_key = Some(ADMIN_KEY.to_owned());
    let server = tandem::build(config, listener)
        .await
        .expect("server builds");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    Running { stop, task }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the server stops within 20 s")
            .expect("server task")
            .expect("server stopped cleanly");
    }
}

/// A free address on the loopback, kept for restarts.
async fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr")
}

/// The session's whole log, read as JSON pages.
async fn log(api: &Client, session: &str, token: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = api
            .get(
                &format!("/v1/sessions/{session}/events?after={after}&limit=200"),
                token,
                200,
            )
            .await;
        events.extend(page["events"].as_array().expect("events").iter().cloned());
        match page["next"].as_u64() {
            Some(next) => after = next,
            None => return events,
        }
    }
}

fn of_type<'a>(log: &'a [Value], event_type: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|event| event["type"] == event_type)
        .collect()
}

/// Waits until the page has shown the event with this seq (and all before it).
async fn wait_for_seq(browser: &Browser, seq: u64) {
    browser
        .wait_for(
            &format!("show every event up to seq {seq}"),
            "return Number(document.body.dataset.lastSeq ?? 0) >= arguments[0];",
            vec![json!(seq)],
        )
        .await;
}

/// What a person sees of the timeline: each comment's text, each prompt's text
/// with its status and the agent's message text under it.
async fn shown(browser: &Browser) -> Value {
    browser
        .run(
            "const text = (element) => element ? element.textContent : null;
             return {
               lastSeq: Number(document.body.dataset.lastSeq),
               comments: [...document.querySelectorAll('#timeline .entry.comment .comment-text')].map(text),
               prompts: [...document.querySelectorAll('#timeline .entry.prompt')].map((prompt) => ({
                 text: text(prompt.querySelector('.prompt-text .text')),
                 status: prompt.dataset.status,
                 answer: [...prompt.querySelectorAll('.message')].map((m) => m.innerText).join(' '),
               })),
             };",
            vec![],
        )
        .await
}

/// Checks that a page shows exactly what the log holds: every comment once,
/// every prompt once with its final status and the agent's whole answer once.
fn assert_shows_log(who: &str, shown: &Value, log: &[Value]) {
    let last = log
        .last()
        .and_then(|event| event["seq"].as_u64())
        .unwrap_or(0);
    assert_eq!(
        shown["lastSeq"],
        json!(last),
        "{who} has seen the whole log"
    );
    let comments: Vec<&str> = of_type(log, "comment.posted")
        .iter()
        .map(|event| text(event, "/data/text"))
        .collect();
    assert_eq!(
        shown["comments"],
        json!(comments),
        "{who} shows each comment once"
    );
    let prompts = shown["prompts"].as_array().expect("prompts");
    let submitted = of_type(log, "prompt.submitted");
    assert_eq!(
        prompts.len(),
        submitted.len(),
        "{who} shows each prompt once"
    );
    for (prompt, event) in prompts.iter().zip(submitted) {
        let id = text(event, "/data/id");
        let answer: String = log
            .iter()
            .filter(|e| {
                e["type"] == "agent.output"
                    && e["data"]["promptId"] == id
                    && e["data"]["kind"] == "message"
            })
            .map(|e| text(e, "/data/text"))
            .collect();
        assert_eq!(
            prompt["text"], event["data"]["text"],
            "{who}: the prompt's text"
        );
        // The page renders the answer's Markdown; the echo of plain words reads
        // the same, but for line breaks.
        let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(
            prompt["answer"].as_str().map(words),
            Some(words(&answer)),
            "{who} shows the agent's answer to {id} exactly once"
        );
    }
}

#[tokio::test]
async fn a_host_and_a_guest_run_a_session_in_two_browsers() {
    let data = tempfile::tempdir().expect("temp dir");
    let addr = free_addr().await;
    let server = start(addr, data.path()).await;
    let base = format!("http://{addr}");
    let api = Client::new(&base);
    let driver = Driver::start().await;
    let host = driver.browser(1280, 900).await;
    let guest = driver.browser(390, 844).await;

    // The host signs in on the start page and creates a session.
    host.open(&format!("{base}/")).await;
    host.type_into("#api-key", ADMIN_KEY).await;
    host.click("#signin-form", "Sign in").await;
    host.type_into("#create-title", "Fix the flaky login test")
        .await;
    host.type_into("#create-name", "Grace").await;
    host.click("#create-form", "Create session").await;
    let invite_url = host
        .wait_for(
            "show the invite link",
            "return document.querySelector('[data-test=invite-url]')?.value;",
            vec![],
        )
        .await;
    let invite_url = invite_url.as_str().expect("a link").to_owned();
    assert!(
        invite_url.starts_with(&format!("{base}/join#tdm_inv_")),
        "{invite_url}"
    );
    host.wait_for_text("#session-rows", "Fix the flaky login test")
        .await;
    host.click("#created", "Open the session").await;
    host.wait_for_text("#whoami", "Grace (host)").await;
    let session_id = host
        .run("return location.pathname.split('/')[2];", vec![])
        .await
        .as_str()
        .expect("the session's id")
        .to_owned();

    // The guest opens the invite link, sees what it is for, and joins.
    guest.open(&invite_url).await;
    guest
        .wait_for_text("#join-title", "Fix the flaky login test")
        .await;
    guest.wait_for_text("#join-role", "collaborator").await;
    assert!(
        !guest
            .client
            .current_url()
            .await
            .expect("url")
            .as_str()
            .contains("tdm_"),
        "the invite token left the address bar"
    );
    guest.type_into("#display-name", "Ada").await;
    guest.click("#join-form", "Join").await;
    guest.wait_for_text("#whoami", "Ada (collaborator)").await;
    assert_eq!(
        guest.client.current_url().await.expect("url").path(),
        format!("/s/{session_id}")
    );
    host.wait_for_text("#participants", "Ada").await;

    // She comments and suggests a prompt; the host sees both and approves.
    guest
        .type_into("#composer-text", "Looks like a timezone bug")
        .await;
    guest.click("#composer", "Comment").await;
    host.wait_for_text("#timeline .comment", "Looks like a timezone bug")
        .await;
    guest
        .type_into("#composer-text", "Run the tests with TZ=UTC")
        .await;
    guest.click("#composer", "Suggest prompt").await;
    host.wait_for_text("#timeline .prompt", "waiting for approval")
        .await;
    host.click(
        "#timeline .prompt",
        "Approve the prompt “Run the tests with TZ=UTC”",
    )
    .await;

    // Both watch the echo agent's answer stream in.
    for browser in [&host, &guest] {
        browser
            .wait_for_text("#timeline .prompt .message", "Run the tests with TZ=UTC")
            .await;
        browser
            .wait_for_text(
                "#timeline .prompt[data-status=completed]",
                "Approved by Grace",
            )
            .await;
    }

    // The host's own prompt asks for a permission: everyone sees the request,
    // the host answers with the agent's own options, everyone sees the answer.
    host.type_into("#composer-text", "/permission\nCheck the fix")
        .await;
    host.click("#composer", "Run prompt").await;
    guest
        .wait_for_text("#timeline .permission", "Waiting for the host to answer")
        .await;
    host.click("#timeline .permission", "Allow").await;
    for browser in [&host, &guest] {
        browser
            .wait_for_text("#timeline .permission", "Answer: Allow by Grace")
            .await;
        browser
            .wait_for_text(
                "#timeline .prompt[data-status=completed] .message",
                "Check the fix",
            )
            .await;
    }

    // The agent panel shows what the echo agent offers: its modes (the host
    // switches them, everyone sees it) and its commands (a click starts a
    // prompt with one). Secrets the agent prints arrive redacted, and say so.
    for browser in [&host, &guest] {
        browser.wait_for_text("#agent-panel", "/leak").await;
        browser.wait_for_text("#agent-panel", "Echo").await;
    }
    let switch_mode = "const select = document.getElementById('agent-mode');
        select.value = arguments[0];
        select.dispatchEvent(new Event('change'));
        return true;";
    host.run(switch_mode, vec![json!("shout")]).await;
    for browser in [&host, &guest] {
        browser
            .wait_for_text(
                "#timeline .note.agent",
                "The agent switched to the mode Shout for Grace.",
            )
            .await;
    }
    guest
        .wait_for_text("#agent-panel .agent-mode", "Mode: Shout")
        .await;
    host.run(switch_mode, vec![json!("echo")]).await;
    guest
        .wait_for_text("#agent-panel .agent-mode", "Mode: Echo")
        .await;
    host.click("#agent-panel", "Start a prompt with /leak")
        .await;
    assert_eq!(
        host.run(
            "return document.getElementById('composer-text').value;",
            vec![]
        )
        .await,
        json!("/leak "),
        "a command starts the prompt"
    );
    host.click("#composer", "Run prompt").await;
    for browser in [&host, &guest] {
        browser
            .wait_for_text(
                "#timeline .prompt[data-status=completed] .redacted",
                "secrets redacted (",
            )
            .await;
    }

    // The screenshot of the README: the host's page, as it is now.
    let screenshot = host.screenshot().await;
    assert!(screenshot.starts_with(b"\x89PNG"), "a PNG");
    if std::env::var_os("TANDEM_UPDATE_SCREENSHOT").is_some() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/session.png");
        std::fs::write(&path, &screenshot).expect("write the README's screenshot");
    }

    // The server restarts while the agent streams: both pages say they are
    // reconnecting, then resume with every event exactly once.
    host.type_into(
        "#composer-text",
        "/slow 500\nalpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike \
         november oscar papa",
    )
    .await;
    host.click("#composer", "Run prompt").await;
    for browser in [&host, &guest] {
        browser
            .wait_for_text("#timeline .prompt[data-status=running] .message", "alpha")
            .await;
    }
    server.stop().await;
    for browser in [&host, &guest] {
        browser
            .wait_for(
                "say it is reconnecting",
                "return document.getElementById('connection').dataset.state === 'reconnecting'
                    && document.getElementById('connection').textContent.includes('Reconnecting');",
                vec![],
            )
            .await;
    }
    let server = start(addr, data.path()).await;
    for browser in [&host, &guest] {
        browser
            .wait_for(
                "be live again",
                "return document.getElementById('connection').dataset.state === 'live';",
                vec![],
            )
            .await;
    }
    guest
        .type_into("#composer-text", "Back after the restart")
        .await;
    guest.click("#composer", "Comment").await;
    guest
        .wait_for_text("#timeline .comment", "Back after the restart")
        .await;
    for (who, browser) in [("the host", &host), ("the guest", &guest)] {
        // The restarted server may still be recording how the interrupted
        // prompt ended: compare once the page has caught up with the log.
        let mut attempts = 0;
        loop {
            let log = log(&api, &session_id, ADMIN_KEY).await;
            let last = log
                .last()
                .and_then(|event| event["seq"].as_u64())
                .expect("a seq");
            wait_for_seq(browser, last).await;
            let shown = shown(browser).await;
            if shown["lastSeq"] == json!(last) || attempts == 20 {
                assert_shows_log(who, &shown, &log);
                break;
            }
            attempts += 1;
        }
    }

    // A link to a permission request (as webhook messages send) opens the
    // session at it.
    let requests = log(&api, &session_id, ADMIN_KEY).await;
    let request = text(
        of_type(&requests, "agent.permission_requested")[0],
        "/data/requestId",
    )
    .to_owned();
    host.open("about:blank").await;
    host.open(&format!("{base}/s/{session_id}#permission-{request}"))
        .await;
    host.wait_for(
        "show the linked permission request",
        "return document.querySelector('.revealed')?.id === arguments[0];",
        vec![json!(format!("permission-{request}"))],
    )
    .await;
    host.wait_for(
        "be live again",
        "return document.getElementById('connection').dataset.state === 'live';",
        vec![],
    )
    .await;

    // The host makes the guest a viewer: her composer locks, and says why.
    host.click("#participants", "Make Ada a viewer").await;
    guest
        .wait_for(
            "lock the composer",
            "return document.getElementById('composer-text').disabled
                && document.getElementById('send-comment').disabled
                && document.getElementById('send-prompt').disabled;",
            vec![],
        )
        .await;
    guest
        .wait_for_text("#composer-note", "You are a viewer")
        .await;
    guest.wait_for_text("#whoami", "Ada (viewer)").await;

    // The host removes the guest: her page says so and stops.
    host.click("#participants", "Remove Ada").await;
    host.click("#participants", "Confirm removing Ada").await;
    guest
        .wait_for_text("#banner", "You were removed from this session.")
        .await;
    guest
        .wait_for(
            "stop following the session",
            "const state = document.getElementById('connection').dataset.state;
             return (state === 'ended' || state === 'gone')
               && document.getElementById('composer-text').disabled;",
            vec![],
        )
        .await;
    host.wait_for_text("#timeline .note", "Grace removed Ada.")
        .await;

    host.client
        .clone()
        .close()
        .await
        .expect("the host's browser closes");
    guest
        .client
        .clone()
        .close()
        .await
        .expect("the guest's browser closes");
    server.stop().await;
}

#[tokio::test]
async fn markup_and_script_from_people_and_the_agent_are_shown_as_text_and_never_run() {
    let data = tempfile::tempdir().expect("temp dir");
    let addr = free_addr().await;
    let server = start(addr, data.path()).await;
    let base = format!("http://{addr}");
    let api = Client::new(&base);
    let payloads = [
        "<script>window.__xss = 'script'</script>",
        "<img src=x onerror=\"window.__xss = 'img'\">",
        "<svg onload=\"window.__xss = 'svg'\"></svg>",
        "[click me](javascript:window.__xss='md-link')",
        "[also me](  JaVaScRiPt:window.__xss='md-case')",
        "<a href=\"javascript:window.__xss='a'\">a link</a>",
        "<iframe src=\"javascript:window.__xss='iframe'\"></iframe>",
        "![pic](javascript:window.__xss='image')",
        "<style>body { display: none }</style>",
    ];
    let hostile = payloads.join("\n\n");
    let created = api
        .post(
            "/v1/sessions",
            ADMIN_KEY,
            json!({ "title": "<b>bold</b><script>window.__xss='title'</script>", "hostDisplayName": "<img src=x onerror=\"window.__xss='host'\">" }),
            201,
        )
        .await;
    let session_id = text(&created, "/session/id").to_owned();
    let session = format!("/v1/sessions/{session_id}");
    let invite = text(&created, "/invite/token").to_owned();
    let joined = api
        .call(
            reqwest::Method::POST,
            "/v1/join",
            None,
            Some(json!({ "inviteToken": invite, "displayName": "<script>window.__xss='name'</script>" })),
            201,
        )
        .await;
    let guest_token = text(&joined, "/token").to_owned();
    api.post(
        &format!("{session}/comments"),
        &guest_token,
        json!({ "text": hostile }),
        201,
    )
    .await;

    let driver = Driver::start().await;
    let host = driver.browser(1280, 900).await;
    host.open(text(&created, "/host/url")).await;
    host.wait_for_text(
        "#timeline .comment",
        "<script>window.__xss = 'script'</script>",
    )
    .await;
    // The host's prompt is echoed back by the agent: agent output full of markup.
    host.type_into("#composer-text", &hostile).await;
    host.click("#composer", "Run prompt").await;
    host.wait_for_text(
        "#timeline .prompt[data-status=completed] .message",
        "click me",
    )
    .await;

    let report = host
        .run(
            "const timeline = document.getElementById('timeline');
             return {
               flag: window.__xss ?? null,
               injected: document.querySelectorAll(
                 '#timeline script, #timeline img, #timeline svg, #timeline iframe, #timeline style, #main style').length,
               scripts: [...document.scripts].map((s) => s.src),
               javascriptLinks: [...document.querySelectorAll('a')]
                 .filter((a) => !['http:', 'https:', 'mailto:'].includes(a.protocol)).length,
               handlers: [...document.querySelectorAll('*')].filter((element) =>
                 [...element.attributes].some((attribute) => attribute.name.startsWith('on'))).length,
               comment: timeline.querySelector('.comment .comment-text').textContent,
               answer: timeline.querySelector('.prompt .message').textContent,
               title: document.getElementById('session-title').textContent,
               visible: getComputedStyle(document.body).display,
             };",
            vec![],
        )
        .await;
    assert_eq!(
        report["flag"],
        Value::Null,
        "no injected script ran: {report}"
    );
    assert_eq!(
        report["injected"], 0,
        "no injected element exists: {report}"
    );
    assert_eq!(
        report["javascriptLinks"], 0,
        "no link other than http(s)/mailto: {report}"
    );
    assert_eq!(
        report["handlers"], 0,
        "no element has an event handler attribute: {report}"
    );
    assert_eq!(
        report["scripts"].as_array().map(Vec::len),
        Some(1),
        "only the page's own module: {report}"
    );
    assert_eq!(
        report["comment"],
        json!(hostile),
        "the comment is shown literally"
    );
    for payload in [
        payloads[0],
        payloads[1],
        payloads[2],
        payloads[5],
        payloads[6],
    ] {
        assert!(
            report["answer"]
                .as_str()
                .unwrap_or_default()
                .contains(payload),
            "the agent's markup is shown as text: {payload}"
        );
    }
    assert_eq!(
        report["title"],
        json!("<b>bold</b><script>window.__xss='title'</script>")
    );
    assert_eq!(
        report["visible"], "block",
        "an injected style changed nothing"
    );
    // Following the rendered "links" does nothing either.
    host.click("#timeline .message", "click me").await;
    host.click("#timeline .message", "also me").await;
    let flag = host.run("return window.__xss ?? null;", vec![]).await;
    assert_eq!(flag, Value::Null);
    assert!(
        host.client.get_alert_text().await.is_err(),
        "no alert was opened"
    );
    host.client
        .clone()
        .close()
        .await
        .expect("the browser closes");
    server.stop().await;
}
