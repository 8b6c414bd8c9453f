//! Real browsers for the web app's tests: Debian's `chromedriver` started on a
//! free port, and headless Chromium windows driven through `WebDriver`
//! (fantoccini), each with its own fresh profile (as two people on two
//! machines). Waits poll the page for a condition until a deadline.

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::{Value, json};

/// How long a wait for the page lasts before the test fails: generous, since
/// Chromium is slow on a busy machine and a resuming page backs off up to 2 s.
pub(crate) const PAGE_WAIT: Duration = Duration::from_secs(45);

/// A `chromedriver` process, killed (with its browsers) on drop.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// Starts `chromedriver` on a free port and waits until it answers.
    pub(crate) async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that killing it ends the browsers too.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start `chromedriver` ({error}). The web app's tests drive headless \
                     Chromium through WebDriver: run scripts/ensure-chromium to install \
                     chromium and chromium-driver (scripts/test does)."
                )
            });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start listening"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, url }
    }

    /// A new headless Chromium window of `width` × `height` CSS pixels.
    pub(crate) async fn browser(&self, width: u32, height: u32) -> Browser {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--no-first-run",
                    "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut client = None;
        for _ in 0..3 {
            match ClientBuilder::new(connector.clone())
                .capabilities(capabilities.clone())
                .connect(&self.url)
                .await
            {
                Ok(connected) => {
                    client = Some(connected);
                    break;
                }
                Err(error) => eprintln!("starting a browser failed ({error}); retrying"),
            }
        }
        Browser {
            client: client.expect("chromedriver starts a headless Chromium"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(group) = i32::try_from(self.child.id()).ok().and_then(Pid::from_raw) {
            let _ = kill_process_group(group, Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser window, used as a person would: open, type, click, read.
pub(crate) struct Browser {
    pub(crate) client: Client,
}

impl Browser {
    pub(crate) async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("the page opens");
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub(crate) async fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|error| panic!("the script failed ({error}): {script}"))
    }

    /// Waits until `script` returns something truthy; returns it.
    pub(crate) async fn wait_for(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        let deadline = tokio::time::Instant::now() + PAGE_WAIT;
        loop {
            let value = self.client.execute(script, args.clone()).await;
            match value {
                Ok(value) if truthy(&value) => return value,
                Ok(_) | Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(value) => panic!(
                    "the page did not {what} within {PAGE_WAIT:?} (last: {value}); it shows:\n{}",
                    self.visible_text().await
                ),
                Err(error) => panic!("the page did not {what} within {PAGE_WAIT:?}: {error}"),
            }
        }
    }

    /// Waits until the page shows `text` somewhere in `css`.
    pub(crate) async fn wait_for_text(&self, css: &str, text: &str) {
        self.wait_for(
            &format!("show {text:?} in {css}"),
            "return [...document.querySelectorAll(arguments[0])]
                .some((element) => element.textContent.includes(arguments[1]));",
            vec![json!(css), json!(text)],
        )
        .await;
    }

    /// Clicks the button (or link) whose text or accessible label is `name`,
    /// within `css`.
    pub(crate) async fn click(&self, css: &str, name: &str) {
        let script = "const [scope, name] = arguments;
            const candidates = [...document.querySelectorAll(
              `${scope} button, ${scope} a, ${scope} .unsafe-link`)];
            const target = candidates.find((element) =>
              (element.getAttribute('aria-label') ?? '').trim() === name
              || element.textContent.trim() === name);
            if (!target || target.disabled) return null;
            target.scrollIntoView({ block: 'center' });
            return target;";
        let found = self
            .wait_for(
                &format!("offer {name:?} in {css}"),
                script,
                vec![json!(css), json!(name)],
            )
            .await;
        let element = self
            .client
            .execute(script, vec![json!(css), json!(name)])
            .await
            .ok()
            .filter(truthy)
            .unwrap_or(found);
        let element = fantoccini::elements::Element::from_element_id(
            self.client.clone(),
            element_id(&element),
        );
        element.click().await.expect("the click lands");
    }

    /// Types `text` into the field `css`, as keystrokes, once it is shown and
    /// enabled.
    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        self.wait_for(
            &format!("offer the field {css}"),
            "const field = document.querySelector(arguments[0]);
             return Boolean(field && !field.disabled && field.offsetParent !== null);",
            vec![json!(css)],
        )
        .await;
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no field {css}: {error}"));
        field.clear().await.expect("the field clears");
        field.send_keys(text).await.expect("typing works");
    }

    /// The page's visible text, for failure messages.
    pub(crate) async fn visible_text(&self) -> String {
        self.client
            .execute("return document.body.innerText;", vec![])
            .await
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    pub(crate) async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.expect("a screenshot")
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(value) => *value,
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The `WebDriver` id of an element a script returned.
fn element_id(value: &Value) -> fantoccini::elements::ElementRef {
    let id = value
        .as_object()
        .and_then(|object| object.values().next())
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("a script returned no element: {value}"));
    fantoccini::elements::ElementRef::from(id.to_owned())
}
