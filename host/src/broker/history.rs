//! Channel history: the seam between the broker and where publications are kept, and the
//! embedded default, [`MemoryHistory`]. A backend keeping history elsewhere (JetStream)
//! implements [`History`].

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::{Message, StreamPosition};
use crate::{channel_name::ChannelName, config::channel_options::HistoryOptions};

/// What a subscriber that asked to recover gets.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The stream's position once the subscriber is attached: its newest offset, its epoch.
    pub position: StreamPosition,
    /// Whether everything after the subscriber's position is in `publications` (false: the
    /// epoch changed, or some of it is no longer kept).
    pub recovered: bool,
    /// What it missed, oldest first (empty unless recovered).
    pub publications: Vec<Arc<Message>>,
}

/// A history query: which publications, how many, in which order.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// Only those after this position (before it, when `reverse`); its epoch must be the
    /// stream's.
    pub since: Option<StreamPosition>,
    /// At most this many; None: all kept.
    pub limit: Option<usize>,
    /// Newest first.
    pub reverse: bool,
}

/// A history answer: publications and the stream's current position.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// The publications, in the order asked.
    pub publications: Vec<Arc<Message>>,
    /// The stream's newest offset and its epoch.
    pub position: StreamPosition,
}

/// Why a history query cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// `since` names another epoch: that stream is gone.
    #[error("unrecoverable position: the stream's epoch is `{current}`, not `{asked}`")]
    UnrecoverablePosition {
        /// The epoch asked about.
        asked: Arc<str>,
        /// The stream's epoch.
        current: Arc<str>,
    },
}

/// Where a channel's publications are kept, and in what order they are delivered.
pub trait History: Send + Sync {
    /// Gives `message` the next position of its channel's stream, keeps it, and hands it to
    /// `deliver` before any later publication of the channel gets its position, so
    /// subscribers see offsets in order.
    fn append(
        &self,
        message: Message,
        options: &HistoryOptions,
        deliver: &mut dyn FnMut(Arc<Message>),
    );

    /// Runs `attach` (which subscribes) where no publication of `channel` can slip between
    /// it and the stream's position, and says what was missed after `since`: every
    /// publication is then either in the recovery or delivered after it, once.
    fn subscribe(
        &self,
        channel: &ChannelName,
        options: &HistoryOptions,
        since: Option<&StreamPosition>,
        attach: &mut dyn FnMut(),
    ) -> Recovery;

    /// Publications of `channel` kept now, as `query` asks.
    fn read(
        &self,
        channel: &ChannelName,
        options: &HistoryOptions,
        query: &HistoryQuery,
    ) -> Result<HistoryPage, HistoryError>;

    /// Forgets what `channel` keeps; its position stays, so clients recovering later learn
    /// that the publications are gone rather than get a new epoch.
    fn remove(&self, channel: &ChannelName);

    /// Forgets `channel`'s stream altogether: its next publication starts a new epoch, so a
    /// client recovering from the old one is told it cannot (a cluster node that stopped
    /// hearing the channel's publications made elsewhere).
    fn reset(&self, channel: &ChannelName);
}

/// Most publications one history reply or recovery carries.
pub const MAX_REPLY_PUBLICATIONS: usize = 1000;
/// Most payload bytes one history reply or recovery carries: a client asking for more
/// gets fewer publications (history) or `recovered: false` (recovery).
pub const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// History in this process's memory: lost on restart, so every stream's epoch is drawn
/// afresh when the stream is created. Bounded by a number of streams and a byte budget
/// for all payloads kept.
pub struct MemoryHistory {
    streams: Mutex<HashMap<ChannelName, Arc<Mutex<Stream>>>>,
    max_channels: usize,
    max_bytes: usize,
    /// Payload bytes kept by every stream.
    bytes: AtomicUsize,
}

struct Stream {
    epoch: Arc<str>,
    top: u64,
    kept: VecDeque<Arc<Message>>,
    /// Payload bytes of `kept`.
    bytes: usize,
    last_used_ms: u64,
    /// Dropped from the map (too many streams, or the budget spent): whoever still holds it
    /// looks the channel up again.
    evicted: bool,
}

impl Stream {
    fn new() -> Self {
        Self {
            epoch: new_epoch(),
            top: 0,
            kept: VecDeque::new(),
            bytes: 0,
            last_used_ms: now_ms(),
            evicted: false,
        }
    }

    /// Forgets the oldest publication kept; returns its payload size.
    fn pop(&mut self) -> usize {
        let size = self.kept.pop_front().map_or(0, |m| m.payload.len());
        self.bytes -= size;
        size
    }

    fn position(&self) -> StreamPosition {
        StreamPosition { offset: self.top, epoch: self.epoch.clone() }
    }

    /// Forgets what is past its size or its time; returns how many bytes that freed.
    fn trim(&mut self, options: &HistoryOptions) -> usize {
        let now = now_ms();
        self.last_used_ms = now;
        let ttl = u64::try_from(options.ttl.as_millis()).unwrap_or(u64::MAX);
        let mut freed = 0;
        while self.kept.len() > options.size
            || self.kept.front().is_some_and(|m| m.published_at_ms.saturating_add(ttl) <= now)
        {
            freed += self.pop();
        }
        freed
    }

    fn offset_of(message: &Message) -> u64 {
        message.position.as_ref().map_or(0, |p| p.offset)
    }
}

impl MemoryHistory {
    /// A history of at most `max_channels` streams and `max_bytes` of payloads.
    pub fn new(max_channels: usize, max_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            streams: Mutex::new(HashMap::new()),
            max_channels: max_channels.max(1),
            max_bytes,
            bytes: AtomicUsize::new(0),
        })
    }

    /// The stream of `channel`, created when missing; when there are too many, or the
    /// budget is spent, the streams used least recently go.
    fn stream(&self, channel: &ChannelName) -> Arc<Mutex<Stream>> {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(stream) = streams.get(channel) {
            return stream.clone();
        }
        // Lock order: the map, then a stream (appends hold a stream only).
        while streams.len() >= self.max_channels
            || (!streams.is_empty() && self.bytes.load(Ordering::Relaxed) > self.max_bytes)
        {
            let idle = streams
                .iter()
                .min_by_key(|(_, s)| lock(s).last_used_ms)
                .map(|(name, _)| name.clone());
            let Some(stream) = idle.and_then(|idle| streams.remove(&idle)) else { break };
            let mut stream = lock(&stream);
            stream.evicted = true;
            self.bytes.fetch_sub(stream.bytes, Ordering::Relaxed);
        }
        let stream = Arc::new(Mutex::new(Stream::new()));
        streams.insert(channel.clone(), stream.clone());
        stream
    }

    /// Runs `f` on the live stream of `channel`, locked.
    fn with_stream<R>(&self, channel: &ChannelName, f: impl FnOnce(&mut Stream) -> R) -> R {
        loop {
            let stream = self.stream(channel);
            let mut stream = lock(&stream);
            if !stream.evicted {
                return f(&mut stream);
            }
        }
    }

    /// Frees `freed` bytes of the budget.
    fn release(&self, freed: usize) {
        self.bytes.fetch_sub(freed, Ordering::Relaxed);
    }
}

impl History for MemoryHistory {
    fn remove(&self, channel: &ChannelName) {
        let stream =
            self.streams.lock().unwrap_or_else(PoisonError::into_inner).get(channel).cloned();
        if let Some(stream) = stream {
            let mut stream = lock(&stream);
            let mut freed = 0;
            while !stream.kept.is_empty() {
                freed += stream.pop();
            }
            self.release(freed);
        }
    }

    fn reset(&self, channel: &ChannelName) {
        let stream = self.streams.lock().unwrap_or_else(PoisonError::into_inner).remove(channel);
        if let Some(stream) = stream {
            let freed = lock(&stream).bytes;
            self.release(freed);
        }
    }

    fn append(
        &self,
        mut message: Message,
        options: &HistoryOptions,
        deliver: &mut dyn FnMut(Arc<Message>),
    ) {
        let channel = message.channel.clone();
        self.with_stream(&channel, |stream| {
            stream.top += 1;
            message.position = Some(stream.position());
            let message = Arc::new(message);
            let size = message.payload.len();
            stream.kept.push_back(message.clone());
            stream.bytes += size;
            self.bytes.fetch_add(size, Ordering::Relaxed);
            let mut freed = stream.trim(options);
            // Over budget: this stream gives up its oldest, keeping the newest.
            while self.bytes.load(Ordering::Relaxed).saturating_sub(freed) > self.max_bytes
                && stream.kept.len() > 1
            {
                freed += stream.pop();
            }
            self.release(freed);
            deliver(message);
        });
    }

    fn subscribe(
        &self,
        channel: &ChannelName,
        options: &HistoryOptions,
        since: Option<&StreamPosition>,
        attach: &mut dyn FnMut(),
    ) -> Recovery {
        self.with_stream(channel, |stream| {
            attach();
            let freed = stream.trim(options);
            self.release(freed);
            let position = stream.position();
            let Some(since) = since else {
                return Recovery { position, recovered: false, publications: Vec::new() };
            };
            let oldest = stream.kept.front().map_or(stream.top + 1, |m| Stream::offset_of(m));
            let recovered = since.epoch == stream.epoch
                && since.offset <= stream.top
                && since.offset.saturating_add(1) >= oldest;
            let missed: Vec<Arc<Message>> = if recovered {
                stream
                    .kept
                    .iter()
                    .filter(|m| Stream::offset_of(m) > since.offset)
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            // Too much to send in one reply: the client cannot recover (it may read history).
            let bytes: usize = missed.iter().map(|m| m.payload.len()).sum();
            if missed.len() > MAX_REPLY_PUBLICATIONS || bytes > MAX_REPLY_BYTES {
                return Recovery { position, recovered: false, publications: Vec::new() };
            }
            Recovery { position, recovered, publications: missed }
        })
    }

    fn read(
        &self,
        channel: &ChannelName,
        options: &HistoryOptions,
        query: &HistoryQuery,
    ) -> Result<HistoryPage, HistoryError> {
        self.with_stream(channel, |stream| {
            let freed = stream.trim(options);
            self.release(freed);
            if let Some(since) = &query.since
                && since.epoch != stream.epoch
            {
                return Err(HistoryError::UnrecoverablePosition {
                    asked: since.epoch.clone(),
                    current: stream.epoch.clone(),
                });
            }
            let limit = query.limit.unwrap_or(usize::MAX).min(MAX_REPLY_PUBLICATIONS);
            let after = |m: &&Arc<Message>| match &query.since {
                None => true,
                Some(since) if query.reverse => Stream::offset_of(m) < since.offset,
                Some(since) => Stream::offset_of(m) > since.offset,
            };
            let mut budget = MAX_REPLY_BYTES;
            let mut within = |m: &&Arc<Message>| {
                let fits = m.payload.len() <= budget;
                budget = budget.saturating_sub(m.payload.len());
                fits
            };
            let publications = if query.reverse {
                stream
                    .kept
                    .iter()
                    .rev()
                    .filter(after)
                    .take(limit)
                    .take_while(&mut within)
                    .cloned()
                    .collect()
            } else {
                stream
                    .kept
                    .iter()
                    .filter(after)
                    .take(limit)
                    .take_while(&mut within)
                    .cloned()
                    .collect()
            };
            Ok(HistoryPage { publications, position: stream.position() })
        })
    }
}

// Each update of a stream is one call on it, so a panic cannot leave it half-updated: a
// poisoned lock is still safe to use.
fn lock(stream: &Mutex<Stream>) -> MutexGuard<'_, Stream> {
    stream.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A fresh epoch: random, so a restarted host never reuses one.
fn new_epoch() -> Arc<str> {
    let mut bytes = [0u8; 6];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: the clock still differs between runs of the process.
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        bytes.copy_from_slice(&nanos.as_nanos().to_le_bytes()[..6]);
    }
    Arc::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::{Origin, Payload};

    const OPTIONS: HistoryOptions = HistoryOptions { size: 3, ttl: Duration::from_secs(60) };

    fn channel() -> ChannelName {
        ChannelName::parse("room").unwrap()
    }

    fn append(history: &MemoryHistory, text: &str) -> u64 {
        let message = Message::new(
            channel(),
            Payload::text(text),
            Origin::Subscriber(super::super::SubscriberId(9)),
        );
        let mut offset = 0;
        history.append(message, &OPTIONS, &mut |m| offset = Stream::offset_of(&m));
        offset
    }

    #[test]
    fn offsets_increase_and_the_oldest_go_past_the_size() {
        let history = MemoryHistory::new(10, 1 << 20);
        let offsets: Vec<u64> = (0..5).map(|i| append(&history, &i.to_string())).collect();
        assert_eq!(offsets, [1, 2, 3, 4, 5]);
        let page = history.read(&channel(), &OPTIONS, &HistoryQuery::default()).unwrap();
        let kept: Vec<u64> = page.publications.iter().map(|m| Stream::offset_of(m)).collect();
        assert_eq!(kept, [3, 4, 5]);
        assert_eq!(page.position.offset, 5);
    }

    #[test]
    fn recovery_needs_the_same_epoch_and_nothing_forgotten() {
        let history = MemoryHistory::new(10, 1 << 20);
        append(&history, "a");
        let epoch =
            history.read(&channel(), &OPTIONS, &HistoryQuery::default()).unwrap().position.epoch;
        for t in ["b", "c"] {
            append(&history, t);
        }
        let since = StreamPosition { offset: 1, epoch: epoch.clone() };
        let r = history.subscribe(&channel(), &OPTIONS, Some(&since), &mut || {});
        assert!(r.recovered);
        assert_eq!(r.publications.len(), 2);
        for t in ["d", "e"] {
            append(&history, t);
        }
        let r = history.subscribe(&channel(), &OPTIONS, Some(&since), &mut || {});
        assert!(!r.recovered, "offset 2 was forgotten");
        let other = StreamPosition { offset: 5, epoch: Arc::from("other") };
        assert!(!history.subscribe(&channel(), &OPTIONS, Some(&other), &mut || {}).recovered);
        let query = HistoryQuery { since: Some(other), ..HistoryQuery::default() };
        assert!(history.read(&channel(), &OPTIONS, &query).is_err());
    }

    #[test]
    fn reverse_and_limit_read_newest_first() {
        let history = MemoryHistory::new(10, 1 << 20);
        for t in ["a", "b", "c"] {
            append(&history, t);
        }
        let query = HistoryQuery { limit: Some(2), reverse: true, ..HistoryQuery::default() };
        let page = history.read(&channel(), &OPTIONS, &query).unwrap();
        let offsets: Vec<u64> = page.publications.iter().map(|m| Stream::offset_of(m)).collect();
        assert_eq!(offsets, [3, 2]);
    }

    #[test]
    fn the_byte_budget_drops_the_oldest_publications() {
        let history = MemoryHistory::new(10, 5);
        for t in ["aaa", "bbb", "ccc"] {
            append(&history, t);
        }
        let page = history.read(&channel(), &OPTIONS, &HistoryQuery::default()).unwrap();
        assert_eq!(page.publications.len(), 1, "6 bytes would exceed the 5 allowed");
        assert_eq!(history.bytes.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn too_many_streams_drop_the_idlest() {
        let history = MemoryHistory::new(1, 1 << 20);
        append(&history, "a");
        let other = ChannelName::parse("other").unwrap();
        history.read(&other, &OPTIONS, &HistoryQuery::default()).unwrap();
        let page = history.read(&channel(), &OPTIONS, &HistoryQuery::default()).unwrap();
        assert!(page.publications.is_empty(), "room's stream was dropped, a new one began");
    }
}
