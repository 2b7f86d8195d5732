//! Containers in a system description: a further shared server given by its image
//! (`[containers.NAME]`), reached by services through a proxy of its own, and a service that
//! is an image instead of a host process, faulted (paused, killed, restarted, stopped) as a
//! process would be. Real containers on the engine `ci/setup` starts; the service image is
//! the `faultline/python:3-bookworm` that `ci/setup` builds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faultline_harness::infra::docker::{Engine, LABEL_RUN};
use faultline_harness::infra::Images;
use faultline_harness::stack::{Stack, StackConfig};
use faultline_harness::system::System;

/// A folder of its own for one test's description and scripts.
fn workspace(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A stdlib-only HTTP service: `/health`, `/boot` (a token drawn at start, so a restart is
/// visible), `/env/NAME`, `/upstream` (GET `$UPSTREAM/version`, answered 502 when it
/// fails) and `/via/NAME` (the same through `$NAME`). It says so in its output when SIGTERM stops it.
const SERVICE: &str = r#"
import http.server, json, os, signal, sys, urllib.request, uuid
BOOT = uuid.uuid4().hex
class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def answer(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        if self.path == "/health":
            return self.answer(200, "ok")
        if self.path == "/boot":
            return self.answer(200, BOOT)
        if self.path.startswith("/env/"):
            return self.answer(200, os.environ.get(self.path[5:], ""))
        if self.path == "/upstream" or self.path.startswith("/via/"):
            base = os.environ["UPSTREAM" if self.path == "/upstream" else self.path[5:]]
            try:
                with urllib.request.urlopen(base + "/version", timeout=1) as r:
                    return self.answer(200, r.read().decode())
            except Exception as e:
                return self.answer(502, str(e))
        self.answer(404, "")
def stop(*_):
    print("stopped by SIGTERM", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
print(f"listening on {os.environ['PORT']}", flush=True)
server.serve_forever()
"#;

async fn get(url: &str) -> Result<(u16, String), String> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.map_err(|e| e.to_string())?))
}

/// Polls `url` until `done` holds for its answer (or its failure), within 20 s.
async fn await_answer(
    url: &str,
    what: &str,
    done: impl Fn(&Result<(u16, String), String>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = get(url).await;
        if done(&answer) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url}: never {what}; last: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn leftovers(run_id: &str) -> anyhow::Result<Vec<String>> {
    let (containers, networks) = Engine::connect().await?.labelled(LABEL_RUN, run_id).await?;
    Ok(containers.into_iter().chain(networks).collect())
}

fn load(dir: &Path, description: &str) -> System {
    std::fs::write(dir.join("service.py"), SERVICE).unwrap();
    let file = dir.join("faultline.toml");
    std::fs::write(&file, description).unwrap();
    System::load(&file).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_described_container_is_a_shared_server_behind_a_proxy_of_its_own() -> anyhow::Result<()>
{
    let dir = workspace("container-server");
    // Any image serves as the example: the Toxiproxy image is one this engine has, and it
    // answers HTTP (`/version`) on 8474.
    let image = Images::from_env().toxiproxy.name;
    let system = load(
        &dir,
        &format!(
            r#"
name = "with-a-container"
[containers.upstream]
image = "{image}"
port = 8474
ready = {{ http = "/version" }}

[services.caller]
command = ["python3", "service.py"]
ready = {{ http = "/health" }}
env = {{ PORT = "{{port}}", UPSTREAM = "{{link:caller->upstream}}", UPSTREAM_ADDRESS = "{{address:caller->upstream}}" }}
"#
        ),
    );
    assert_eq!(system.topology().link_names(), ["caller->upstream"]);
    let stack = Stack::start(&system, StackConfig::default()).await?;
    let caller = stack.service_url("caller")?;

    let (status, version) = get(&format!("{caller}/upstream"))
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(status, 200, "{version}");
    assert!(!version.trim().is_empty());
    // Both placeholders name the same proxy on the infrastructure's Toxiproxy.
    let (_, address) = get(&format!("{caller}/env/UPSTREAM_ADDRESS"))
        .await
        .map_err(anyhow::Error::msg)?;
    let (_, url) = get(&format!("{caller}/env/UPSTREAM"))
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(url, format!("http://{address}"));
    assert_eq!(
        stack
            .infra()
            .link("caller->upstream")
            .map(|l| l.address.clone()),
        Some(address)
    );

    // The link is a proxy a fault can cut, and heal.
    let (toxiproxy, proxy) = stack.link("caller->upstream")?;
    assert_eq!(proxy, "caller-upstream");
    toxiproxy.disable(&proxy).await?;
    await_answer(&format!("{caller}/upstream"), "502 while cut", |a| {
        matches!(a, Ok((502, _)))
    })
    .await;
    toxiproxy.enable(&proxy).await?;
    await_answer(&format!("{caller}/upstream"), "200 once healed", |a| {
        matches!(a, Ok((200, _)))
    })
    .await;

    // The container itself is a target of container faults.
    stack.infra().pause_container("upstream").await?;
    await_answer(&format!("{caller}/upstream"), "502 while paused", |a| {
        matches!(a, Ok((502, _)))
    })
    .await;
    stack.infra().unpause_container("upstream").await?;
    await_answer(&format!("{caller}/upstream"), "200 once thawed", |a| {
        matches!(a, Ok((200, _)))
    })
    .await;

    let run_id = stack.infra().run_id().to_string();
    stack.shutdown().await?;
    assert_eq!(leftovers(&run_id).await?, Vec::<String>::new());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A server on two ports, each answering every GET with its port and its environment's
/// `GREETING` and `DIR`; run with `python3 -c` in the image `ci/setup` builds.
const TWO_PORTS: &str = r#"
import http.server, os, threading
SAY = os.environ["GREETING"] + " " + os.environ["DIR"]
def serve(port):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass
        def do_GET(self):
            body = f"port {port} {SAY}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
    http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
threading.Thread(target=serve, args=(9000,), daemon=True).start()
serve(8000)
"#;

#[tokio::test]
async fn a_container_with_two_ports_is_one_link_whose_fault_cuts_both() -> anyhow::Result<()> {
    use faultline_chaos::scenario::{Fault, FaultKind, Target};
    use faultline_harness::history::{EventType, Op, Recorder};
    use faultline_harness::nemesis::Nemesis;

    let dir = workspace("container-ports");
    let system = load(
        &dir,
        &format!(
            r#"
name = "two-ports"
[containers.upstream]
image = "faultline/python:3-bookworm"
command = ["python3", "-c", '''{TWO_PORTS}''']
ports = [8000, 9000]
ready = {{ http = "/" }}
env = {{ GREETING = "hello {{env:FAULTLINE_CONTAINERS_TEST_SURELY_UNSET:-there}}", DIR = "{{dir}}" }}

[services.caller]
command = ["python3", "service.py"]
ready = {{ http = "/health" }}
env = {{ PORT = "{{port}}", MAIN = "{{link:caller->upstream}}", ADMIN = "{{link:caller->upstream:9000}}" }}
"#
        ),
    );
    assert_eq!(system.topology().link_names(), ["caller->upstream"]);
    let mut stack = Stack::start(&system, StackConfig::default()).await?;
    let run_id = stack.infra().run_id().to_string();
    let caller = stack.service_url("caller")?;
    let (main, admin) = (format!("{caller}/via/MAIN"), format!("{caller}/via/ADMIN"));

    // Each placeholder leads to its own port, through a proxy of its own; the container's
    // environment had its {env:…} default and {dir} resolved.
    let said = format!("hello there {}", dir.display());
    for (url, port) in [(&main, 8000), (&admin, 9000)] {
        let answer = get(url).await.map_err(anyhow::Error::msg)?;
        assert_eq!(answer, (200, format!("port {port} {said}")), "{url}");
    }
    let (_, proxies) = stack.link_proxies("caller->upstream")?;
    assert_eq!(proxies, ["caller-upstream", "caller-upstream-9000"]);

    // A partition of the link, through the nemesis as a scenario's would be, cuts both ports.
    let partition = Fault {
        start: Duration::ZERO,
        duration: Duration::from_secs(3600),
        target: Target::Link {
            client: "caller".into(),
            server: "upstream".into(),
        },
        kind: FaultKind::Partition,
    };
    let mut nemesis = Nemesis::new(vec![partition]);
    let recorder = Recorder::new();
    // The nemesis is cancelled once both ports are seen cut: only after it has recorded the
    // partition as applied (and so will heal it), never in the middle of applying it.
    let both_cut = async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !recorder.finish().events().iter().any(|event| {
            event.event_type == EventType::Ok && matches!(event.op, Op::StartFault { .. })
        }) {
            assert!(Instant::now() < deadline, "the partition was never applied");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for url in [&main, &admin] {
            await_answer(url, "502 while the link is cut", |a| matches!(a, Ok((502, _)))).await;
        }
    };
    tokio::select! {
        () = nemesis.run(&mut stack, tokio::time::Instant::now(), &recorder) => {
            panic!("the nemesis healed before both ports were seen cut")
        }
        () = both_cut => {}
    }
    assert_eq!(nemesis.heal_all(&mut stack, &recorder).await, Vec::<String>::new());
    for url in [&main, &admin] {
        await_answer(url, "200 once healed", |a| matches!(a, Ok((200, _)))).await;
    }

    stack.shutdown().await?;
    assert_eq!(leftovers(&run_id).await?, Vec::<String>::new());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn a_service_that_is_an_image_is_paused_killed_restarted_and_stopped_like_a_process(
) -> anyhow::Result<()> {
    let dir = workspace("container-service");
    let system = load(
        &dir,
        r#"
name = "image-service"
[services.web]
image = "faultline/python:3-bookworm"
command = ["python3", "/srv/service.py"]
mounts = [".:/srv:ro"]
ready = { http = "/health" }
stop_grace = "20s"
env = { PORT = "{port}" }
"#,
    );
    let mut stack = Stack::start(&system, StackConfig::default()).await?;
    let run_id = stack.infra().run_id().to_string();
    let web = stack.service_url("web")?;
    // It runs on the host's network: its {port} on 127.0.0.1 is where faultline finds it.
    let (status, first_boot) = get(&format!("{web}/boot"))
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(status, 200);
    // Its output reaches its log as it is written.
    let log = std::fs::read_to_string(stack.run_dir().join("web.log"))?;
    assert!(log.contains("listening on"), "log: {log}");

    stack.pause("web").await?;
    assert!(
        get(&format!("{web}/boot")).await.is_err(),
        "a paused service answers nothing"
    );
    stack.resume("web").await?;
    await_answer(
        &format!("{web}/boot"),
        "answering after resume",
        |a| matches!(a, Ok((200, b)) if *b == first_boot),
    )
    .await;

    stack.kill("web").await?;
    await_answer(
        &format!("{web}/boot"),
        "refusing after kill",
        Result::is_err,
    )
    .await;
    assert!(stack.check_ready("web").await.is_err());
    stack.restart("web").await?;
    let (status, second_boot) = get(&format!("{web}/boot"))
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(status, 200);
    assert_ne!(
        second_boot, first_boot,
        "a restart starts a fresh container"
    );

    // Stopping sends the stop signal to the program itself (through the container's init).
    stack.stop("web").await?;
    let log = std::fs::read_to_string(stack.run_dir().join("web.log"))?;
    assert!(log.contains("stopped by SIGTERM"), "log: {log}");
    let logs = stack.run_dir().to_path_buf();
    stack.shutdown().await?;
    assert!(!logs.exists(), "the stack's folder of logs is gone");
    assert_eq!(leftovers(&run_id).await?, Vec::<String>::new());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
