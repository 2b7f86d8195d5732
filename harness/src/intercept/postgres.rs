//! The statement proxy: faultline's own proxy on a service's link to Postgres, in front of the
//! link's Toxiproxy proxy (service → this → Toxiproxy → Postgres), so TCP toxics keep working
//! behind it. It reads the conversation — the simple query protocol and the extended one
//! (Parse, Bind, Execute, Sync) — with `pgwire`'s message types, and forwards every message as
//! it came unless a statement-level fault ([`StatementFault`]) picks the statement:
//!
//! - `error`: the server raises the chosen SQLSTATE in the statement's place (a `DO` block
//!   that raises it), so the transaction is aborted exactly as Postgres aborts it on an error;
//!   a `COMMIT` is replaced by a `ROLLBACK` whose completion the service sees as the error, as
//!   a serialization failure at commit looks;
//! - `delay`: the statement is sent late; `hold`: it is sent when the fault heals;
//! - `drop_answer`: the statement runs, and once the server has answered, the service's
//!   connection is cut instead (and the server's closed: a `COMMIT` is applied, the service
//!   cannot know).
//!
//! Each statement hit is an operation of the run's history (process `nemesis`,
//! [`Op::RequestFault`] with method `SQL` and the statement's fingerprint as its path). Every
//! statement's fingerprint is counted, for the call sites discovery learns.
//!
//! A connection that asks for TLS or GSS encryption and is granted it is passed on untouched
//! (nothing in it can be read); the servers faultline starts refuse TLS, so services fall back
//! to plain connections as `sslmode=prefer` does.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use bytes::BytesMut;
use faultline_chaos::scenario::statement::{fingerprint, is_commit, StatementAction, StatementFault};
use pgwire::messages::extendedquery::{Bind, Execute, Parse};
use pgwire::messages::response::ErrorResponse;
use pgwire::messages::simplequery::Query;
use pgwire::messages::{DecodeContext, Message, ProtocolVersion};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::history::{Op, Process, Recorder};

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;
/// No message of a conversation faultline's systems hold is larger; a bigger length is a
/// stream that is not Postgres's protocol, passed on untouched.
const LARGEST_MESSAGE: usize = 1 << 30;

/// A fault in effect on the proxy.
struct Installed {
    index: usize,
    fault: StatementFault,
    seed: u64,
    recorder: Recorder,
    /// Matching statements seen since it was installed.
    matched: u64,
    /// Cancelled when it is taken out of effect: what a held statement waits for.
    healed: CancellationToken,
}

impl Drop for Installed {
    fn drop(&mut self) {
        self.healed.cancel();
    }
}

struct Shared {
    link: String,
    upstream: SocketAddr,
    faults: Mutex<Vec<Installed>>,
    /// How many times each statement fingerprint was seen since the last forget.
    seen: Mutex<BTreeMap<String, u64>>,
}

/// The statement proxy of one service's link to Postgres.
pub struct StatementProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    _stop: super::StopOnDrop,
}

impl StatementProxy {
    /// Starts the proxy of `link` (`inventory->postgres`), forwarding to `upstream` (the
    /// link's Toxiproxy proxy, or the server itself).
    pub async fn start(link: &str, upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            link: link.to_string(),
            upstream,
            faults: Mutex::new(Vec::new()),
            seen: Mutex::new(BTreeMap::new()),
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept(listener, shared.clone(), stop.clone()));
        Ok(Self {
            address,
            shared,
            _stop: super::StopOnDrop(stop),
        })
    }

    /// Where the service connects.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Puts fault `index` of the run's schedule in effect; the statements it hits are recorded
    /// in `recorder`'s history. A fraction is drawn from `seed`.
    pub fn install(&self, index: usize, fault: StatementFault, seed: u64, recorder: Recorder) {
        let mut faults = self.shared.faults.lock().expect("faults lock");
        faults.retain(|f| f.index != index);
        faults.push(Installed {
            index,
            fault,
            seed,
            recorder,
            matched: 0,
            healed: CancellationToken::new(),
        });
        faults.sort_by_key(|f| f.index);
    }

    /// Takes fault `index` out of effect: statements it holds are sent now, those it delays
    /// still late. Whether it was in effect.
    pub fn remove(&self, index: usize) -> bool {
        super::take_out(&self.shared.faults, index, |f| f.index)
    }

    /// Takes every fault out of effect (held statements are sent).
    pub fn clear(&self) {
        self.shared.faults.lock().expect("faults lock").clear();
    }

    /// Each statement fingerprint seen since the last [`forget`](Self::forget), with how many
    /// times.
    pub fn statements(&self) -> BTreeMap<String, u64> {
        self.shared.seen.lock().expect("seen lock").clone()
    }

    /// The statements seen since the last [`forget`](Self::forget) as call sites: method
    /// `SQL`, the fingerprint as the route.
    pub fn sites(&self) -> Vec<super::CallSite> {
        self.statements()
            .into_iter()
            .filter(|(statement, _)| !statement.is_empty())
            .map(|(statement, count)| super::CallSite {
                link: self.shared.link.clone(),
                method: "SQL".into(),
                route: statement,
                count,
            })
            .collect()
    }

    /// Forgets the statements seen so far.
    pub fn forget(&self) {
        self.shared.seen.lock().expect("seen lock").clear();
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    super::serve_each(listener, stop, |client| serve(shared.clone(), client)).await;
}

/// The fault hitting one statement: what it does, the statement's fingerprint, and what a
/// held statement waits for.
struct Hit {
    action: StatementAction,
    statement: String,
    healed: CancellationToken,
}

impl Shared {
    /// Counts `sql`'s fingerprint, and the fault (if any) that picks it, recorded in the
    /// history.
    fn decide(&self, sql: &str) -> Option<Hit> {
        let statement = fingerprint(sql);
        *self.seen.lock().expect("seen lock").entry(statement.clone()).or_default() += 1;
        let mut faults = self.faults.lock().expect("faults lock");
        for installed in faults.iter_mut().filter(|f| f.fault.matches(sql)) {
            installed.matched += 1;
            if super::chosen(installed.fault.which, installed.seed, installed.index, installed.matched) {
                let action = installed.fault.action.clone();
                installed
                    .recorder
                    .invoke(
                        Process::Nemesis,
                        Op::RequestFault {
                            index: installed.index,
                            link: self.link.clone(),
                            method: "SQL".into(),
                            path: statement.clone(),
                            action: action.name().into(),
                        },
                    )
                    .ok(json!({"statement": truncated(sql, 200)}));
                return Some(Hit {
                    action,
                    statement,
                    healed: installed.healed.clone(),
                });
            }
        }
        None
    }
}

fn truncated(text: &str, most: usize) -> String {
    match text.char_indices().nth(most) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// What the server's answers to one batch of the service's messages (up to a Sync, or one
/// simple Query) must become on their way back.
#[derive(Default)]
struct Batch {
    /// No more messages of the service belong to it.
    closed: bool,
    /// Parse, Bind and Execute messages sent in it so far.
    parses: usize,
    binds: usize,
    executes: usize,
    /// ParseComplete, BindComplete and completions (CommandComplete, EmptyQueryResponse,
    /// PortalSuspended) answered in it so far.
    parsed: usize,
    bound: usize,
    completed: usize,
    /// The ParseComplete and BindComplete (by their place in the batch) of messages faultline
    /// put in, which the service never sent.
    inserted: Vec<(u8, usize)>,
    /// The completion (by its place) to answer as this error instead.
    completion_as_error: Option<(usize, BytesMut)>,
    /// Its whole answer is lost and the connection cut when it ends.
    drop_answer: bool,
}

type Batches = Arc<Mutex<VecDeque<Batch>>>;

/// Opens a batch for the service's next message when the last one is closed.
fn current(batches: &mut VecDeque<Batch>) -> &mut Batch {
    if batches.back().is_none_or(|b| b.closed) {
        batches.push_back(Batch::default());
    }
    batches.back_mut().expect("a batch")
}

async fn serve(shared: Arc<Shared>, mut client: TcpStream) -> std::io::Result<()> {
    // The server unreachable, the service's connection is closed without an answer.
    let mut server = TcpStream::connect(shared.upstream).await?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    // Untagged messages first: TLS or GSS negotiation, a cancel request, the startup message.
    loop {
        let Some(frame) = read_untagged(&mut client).await? else {
            return Ok(());
        };
        server.write_all(&frame).await?;
        let code = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        match code {
            SSL_REQUEST | GSSENC_REQUEST => {
                let mut answer = [0u8; 1];
                server.read_exact(&mut answer).await?;
                client.write_all(&answer).await?;
                if answer[0] != b'N' {
                    return passthrough(client, server).await;
                }
            }
            CANCEL_REQUEST => return passthrough(client, server).await,
            _ => break,
        }
    }
    // Authentication belongs to the first batch, which the server's first ReadyForQuery ends.
    let batches: Batches = Arc::new(Mutex::new(VecDeque::from([Batch::default()])));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        result = frontend(&shared, client_read, server_write, batches.clone()) => result,
        result = backend(server_read, client_write, batches) => result,
    }
}

async fn passthrough(mut client: TcpStream, mut server: TcpStream) -> std::io::Result<()> {
    tokio::io::copy_bidirectional(&mut client, &mut server).await.map(|_| ())
}

/// An untagged message (length, then body); `None` at the end of the stream.
async fn read_untagged(from: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Option<BytesMut>> {
    let mut length = [0u8; 4];
    match from.read_exact(&mut length).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = i32::from_be_bytes(length) as usize;
    if !(8..=10_000).contains(&len) {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not a startup message"));
    }
    let mut frame = BytesMut::zeroed(len);
    frame[..4].copy_from_slice(&length);
    from.read_exact(&mut frame[4..]).await?;
    Ok(Some(frame))
}

/// A tagged message (tag, length, body) as it came; `None` at the end of the stream.
async fn read_tagged(from: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Option<BytesMut>> {
    let mut head = [0u8; 5];
    match from.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if !(4..=LARGEST_MESSAGE).contains(&len) {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not a protocol message"));
    }
    let mut frame = BytesMut::zeroed(1 + len);
    frame[..5].copy_from_slice(&head);
    from.read_exact(&mut frame[5..]).await?;
    Ok(Some(frame))
}

fn context() -> DecodeContext {
    let mut context = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
    context.awaiting_frontend_ssl = false;
    context.awaiting_frontend_startup = false;
    context
}

/// One of pgwire's messages read from a whole frame; `None` when it does not decode.
fn decode<M: Message>(frame: &BytesMut) -> Option<M> {
    M::decode(&mut frame.clone(), &context()).ok().flatten()
}

fn encode(message: &impl Message) -> BytesMut {
    let mut out = BytesMut::new();
    message.encode(&mut out).expect("encoding a message faultline built");
    out
}

/// The statement that makes the server raise `code` in the place of `statement`.
fn raise(code: &str, statement: &str) -> String {
    let message = format!("faultline: injected SQLSTATE {code} on {statement}").replace('\'', "''");
    format!("DO $faultline$ BEGIN RAISE EXCEPTION USING ERRCODE = '{code}', MESSAGE = '{message}'; END $faultline$")
}

/// The error a `COMMIT` replaced by a `ROLLBACK` is answered with.
fn commit_error(code: &str) -> BytesMut {
    encode(&ErrorResponse::new(vec![
        (b'S', "ERROR".into()),
        (b'V', "ERROR".into()),
        (b'C', code.into()),
        (b'M', format!("faultline: injected SQLSTATE {code} on COMMIT; the transaction was rolled back")),
    ]))
}

/// How long a statement waits before it is sent on.
enum Wait {
    No,
    For(std::time::Duration),
    Until(CancellationToken),
}

/// The service's messages, on their way to the server.
async fn frontend(
    shared: &Shared,
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    batches: Batches,
) -> std::io::Result<()> {
    // Statement text by prepared statement name, and by portal ("" is the unnamed one).
    let mut statements: HashMap<String, String> = HashMap::new();
    let mut portals: HashMap<String, String> = HashMap::new();
    while let Some(frame) = read_tagged(&mut from).await? {
        let mut out = frame;
        // Sent late, when a fault delays or holds it; the lock on the batches is not held
        // meanwhile.
        let mut wait = Wait::No;
        match out[0] {
            b'Q' => {
                let sql = decode::<Query>(&out).map(|q| q.query);
                let hit = sql.as_deref().and_then(|sql| shared.decide(sql));
                let mut batches_now = batches.lock().expect("batches lock");
                let batch = current(&mut batches_now);
                batch.closed = true;
                match hit {
                    Some(Hit { action: StatementAction::Error(code), statement, .. }) => {
                        if sql.as_deref().is_some_and(is_commit) {
                            out = encode(&Query::new("ROLLBACK".into()));
                            batch.completion_as_error = Some((0, commit_error(&code)));
                        } else {
                            out = encode(&Query::new(raise(&code, &statement)));
                        }
                    }
                    Some(Hit { action: StatementAction::DropAnswer, .. }) => batch.drop_answer = true,
                    Some(Hit { action: StatementAction::Delay(late), .. }) => wait = Wait::For(late),
                    Some(Hit { action: StatementAction::Hold, healed, .. }) => wait = Wait::Until(healed),
                    None => {}
                }
            }
            b'P' => {
                if let Some(parse) = decode::<Parse>(&out) {
                    statements.insert(parse.name.unwrap_or_default(), parse.query);
                }
                current(&mut batches.lock().expect("batches lock")).parses += 1;
            }
            b'B' => {
                if let Some(bind) = decode::<Bind>(&out) {
                    let sql = statements
                        .get(bind.statement_name.as_deref().unwrap_or_default())
                        .cloned()
                        .unwrap_or_default();
                    portals.insert(bind.portal_name.unwrap_or_default(), sql);
                }
                current(&mut batches.lock().expect("batches lock")).binds += 1;
            }
            b'E' => {
                let sql = decode::<Execute>(&out)
                    .and_then(|e| portals.get(e.name.as_deref().unwrap_or_default()).cloned());
                let hit = sql.as_deref().and_then(|sql| shared.decide(sql));
                let mut batches_now = batches.lock().expect("batches lock");
                let batch = current(&mut batches_now);
                match hit {
                    Some(Hit { action: StatementAction::Error(code), statement, .. }) => {
                        // In the Execute's place, a statement of faultline's own: its
                        // ParseComplete and BindComplete are not passed on.
                        let commit = sql.as_deref().is_some_and(is_commit);
                        let text = if commit { "ROLLBACK".to_string() } else { raise(&code, &statement) };
                        out = encode(&Parse::new(None, text, Vec::new()));
                        out.extend_from_slice(&encode(&Bind::new(None, None, Vec::new(), Vec::new(), Vec::new())));
                        out.extend_from_slice(&encode(&Execute::new(None, 0)));
                        batch.inserted.push((b'1', batch.parses));
                        batch.inserted.push((b'2', batch.binds));
                        if commit {
                            batch.completion_as_error = Some((batch.executes, commit_error(&code)));
                        }
                        batch.parses += 1;
                        batch.binds += 1;
                        batch.executes += 1;
                        // The unnamed statement and portal are faultline's now.
                        statements.remove("");
                        portals.remove("");
                    }
                    Some(Hit { action: StatementAction::DropAnswer, .. }) => {
                        batch.drop_answer = true;
                        batch.executes += 1;
                    }
                    Some(Hit { action: StatementAction::Delay(late), .. }) => {
                        batch.executes += 1;
                        wait = Wait::For(late);
                    }
                    Some(Hit { action: StatementAction::Hold, healed, .. }) => {
                        batch.executes += 1;
                        wait = Wait::Until(healed);
                    }
                    None => batch.executes += 1,
                }
            }
            b'S' => current(&mut batches.lock().expect("batches lock")).closed = true,
            _ => {
                current(&mut batches.lock().expect("batches lock"));
            }
        }
        match wait {
            Wait::No => {}
            Wait::For(delay) => tokio::time::sleep(delay).await,
            Wait::Until(healed) => healed.cancelled().await,
        }
        to.write_all(&out).await?;
    }
    Ok(())
}

/// The server's answers, on their way back to the service.
async fn backend(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    batches: Batches,
) -> std::io::Result<()> {
    while let Some(frame) = read_tagged(&mut from).await? {
        let tag = frame[0];
        let out = {
            let mut batches = batches.lock().expect("batches lock");
            match batches.front_mut() {
                // Nothing asked: a notice or a notification.
                None => Some(frame),
                Some(batch) if batch.drop_answer => {
                    if tag == b'Z' {
                        batches.pop_front();
                        // Answered, and the service never hears: its connection is cut.
                        return Ok(());
                    }
                    None
                }
                Some(batch) => match tag {
                    b'1' | b'2' => {
                        let place = if tag == b'1' { &mut batch.parsed } else { &mut batch.bound };
                        let at = *place;
                        *place += 1;
                        (!batch.inserted.contains(&(tag, at))).then_some(frame)
                    }
                    b'C' | b'I' | b's' => {
                        let at = batch.completed;
                        batch.completed += 1;
                        match &batch.completion_as_error {
                            Some((place, error)) if *place == at => Some(error.clone()),
                            _ => Some(frame),
                        }
                    }
                    b'Z' => {
                        batches.pop_front();
                        Some(frame)
                    }
                    _ => Some(frame),
                },
            }
        };
        if let Some(out) = out {
            to.write_all(&out).await?;
        }
    }
    Ok(())
}

/// A message's tag, as a test reads it.
#[cfg(test)]
fn tag_of(frame: &BytesMut) -> u8 {
    frame[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raise_names_the_code_and_the_statement_and_survives_quotes() {
        let sql = raise("40001", "INSERT INTO o'brien");
        assert!(sql.contains("ERRCODE = '40001'"));
        assert!(sql.contains("INSERT INTO o''brien"));
    }

    #[test]
    fn messages_faultline_builds_decode_as_pgwire_reads_them() {
        let query = encode(&Query::new("COMMIT".into()));
        assert_eq!(tag_of(&query), b'Q');
        assert_eq!(decode::<Query>(&query).map(|q| q.query).as_deref(), Some("COMMIT"));
        let error = commit_error("40001");
        assert_eq!(tag_of(&error), b'E');
        let fields = decode::<ErrorResponse>(&error).expect("an error").fields;
        assert!(fields.contains(&(b'C', "40001".to_string())));
    }

    #[test]
    fn a_batch_opens_when_the_last_one_closed() {
        let mut batches = VecDeque::from([Batch::default()]);
        current(&mut batches).parses += 1;
        assert_eq!(batches.len(), 1);
        batches[0].closed = true;
        current(&mut batches).binds += 1;
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1].binds, 1);
    }
}
