//! The snapshot file format and the snapshot directory.
//!
//! ```text
//! header:  magic "LKSNAP\r\n" | format version u32 LE | meta len u32 LE | postcard(SnapshotMeta)
//!          | crc32c(all preceding header bytes) u32 LE
//! records: tag u8 (1 = kv, 2 = dedup) | key len u32 LE | key | value len u32 LE | value
//!          | crc32c(tag .. value) u32 LE
//!          kv records first, then dedup records, keys strictly ascending within a tree;
//!          `value` is the record's stored payload (without the database's own checksum).
//! trailer: 0xFF | record count u64 LE | digest u128 LE | blake3(every preceding byte) [32]
//! ```
//!
//! A [`Reader`] checks all of it while streaming: each crc, the order, the count, the digest
//! recomputed from the records, the blake3 of the whole file, and that the file ends right
//! after the trailer. Lengths are bounded by what is left of the file before anything is
//! allocated, so a corrupt file is an error, never a panic or a huge allocation.

use std::fs::File;
use std::io;
use std::io::BufReader;
use std::io::BufWriter;
use std::io::Read;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::path::PathBuf;
use std::time::SystemTime;
use std::time::UNIX_EPOCH;

use lookout_types::SnapshotMeta;

use crate::FORMAT_VERSION;
use crate::codec;
use crate::digest::Digest;
use crate::digest::TAG_DEDUP;
use crate::digest::TAG_KV;
use crate::error::StoreError;

const MAGIC: &[u8; 8] = b"LKSNAP\r\n";
const END_TAG: u8 = 0xFF;
const MAX_META_LEN: u64 = 64 << 20;
/// Bounds on a record's key and value, far above Lookout's configurable limits (64 KiB keys,
/// 64 MiB values): a corrupt length field must not make the reader allocate gigabytes.
const MAX_KEY_LEN: u64 = 1 << 20;
const MAX_VAL_LEN: u64 = 128 << 20;
const BUF_SIZE: usize = 256 << 10;

/// Snapshot data handed to and from openraft: an open handle to a snapshot file.
///
/// Being a handle, it stays readable even if the file is unlinked (e.g. pruned by a newer
/// snapshot) while a transfer is in progress. Reads should be positional
/// ([`FileExt::read_at`]); the store never relies on the handle's file position.
#[derive(Debug)]
pub struct SnapshotFile {
    pub file: File,
    /// Length of the snapshot in bytes.
    pub len: u64,
}

impl SnapshotFile {
    pub fn open(path: &Path) -> io::Result<SnapshotFile> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(SnapshotFile { file, len })
    }

    /// A buffered reader over the whole snapshot, independent of the handle's position.
    pub(crate) fn reader(&self) -> BufReader<PosReader<'_>> {
        BufReader::with_capacity(
            BUF_SIZE,
            PosReader {
                file: &self.file,
                pos: 0,
            },
        )
    }
}

/// Reads a file from offset 0 with positional reads.
pub(crate) struct PosReader<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for PosReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// One record of a snapshot.
pub(crate) struct Record {
    pub tag: u8,
    pub key: Vec<u8>,
    pub val: Vec<u8>,
}

/// Writes a snapshot file. The caller fsyncs and renames it.
pub(crate) struct Writer {
    out: BufWriter<File>,
    hasher: blake3::Hasher,
    count: u64,
    digest: Digest,
    last: Option<(u8, Vec<u8>)>,
}

impl Writer {
    pub(crate) fn new(file: File, meta: &SnapshotMeta) -> Result<Writer, StoreError> {
        let mut w = Writer {
            out: BufWriter::with_capacity(BUF_SIZE, file),
            hasher: blake3::Hasher::new(),
            count: 0,
            digest: Digest::default(),
            last: None,
        };
        let meta = codec::to_payload(meta)?;
        let mut header = Vec::with_capacity(16 + meta.len() + 4);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        header.extend_from_slice(&meta);
        let crc = crc32c::crc32c(&header);
        header.extend_from_slice(&crc.to_le_bytes());
        w.put(&header)?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.out.write_all(bytes)
    }

    /// Appends a record; records must come in the order the format requires.
    pub(crate) fn record(&mut self, tag: u8, key: &[u8], val: &[u8]) -> Result<(), StoreError> {
        debug_assert!(tag == TAG_KV || tag == TAG_DEDUP);
        debug_assert!(
            self.last
                .as_ref()
                .is_none_or(|(t, k)| (*t, k.as_slice()) < (tag, key))
        );
        if key.len() as u64 > MAX_KEY_LEN || val.len() as u64 > MAX_VAL_LEN {
            return Err(StoreError::corrupt(
                format!(
                    "record for key {}",
                    codec::show_key(&key[..key.len().min(64)])
                ),
                format!(
                    "{}-byte key / {}-byte value exceed the snapshot format's bounds",
                    key.len(),
                    val.len()
                ),
            ));
        }
        let key_len = key.len() as u32;
        let val_len = val.len() as u32;
        let mut crc = 0;
        for part in [
            &[tag][..],
            &key_len.to_le_bytes(),
            key,
            &val_len.to_le_bytes(),
            val,
        ] {
            crc = crc32c::crc32c_append(crc, part);
            self.put(part)?;
        }
        self.put(&crc.to_le_bytes())?;
        self.count += 1;
        self.digest.add(tag, key, val);
        if cfg!(debug_assertions) {
            self.last = Some((tag, key.to_vec()));
        }
        Ok(())
    }

    /// Writes the trailer and returns the (not yet fsynced) file and the content digest.
    pub(crate) fn finish(mut self) -> Result<(File, Digest, u64), StoreError> {
        self.put(&[END_TAG])?;
        self.put(&self.count.to_le_bytes())?;
        self.put(&self.digest.0.to_le_bytes())?;
        let hash = self.hasher.finalize();
        self.out.write_all(hash.as_bytes())?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        Ok((file, self.digest, self.count))
    }
}

/// Reads and verifies a snapshot file as a stream of records.
pub(crate) struct Reader<R: Read> {
    inp: R,
    hasher: blake3::Hasher,
    remaining: u64,
    count: u64,
    digest: Digest,
    last: Option<(u8, Vec<u8>)>,
    finished: bool,
}

fn bad(detail: impl Into<String>) -> StoreError {
    StoreError::corrupt("snapshot file", detail)
}

impl<R: Read> Reader<R> {
    /// Reads and checks the header of a snapshot of `len` bytes.
    pub(crate) fn new(inp: R, len: u64) -> Result<(SnapshotMeta, Reader<R>), StoreError> {
        let mut r = Reader {
            inp,
            hasher: blake3::Hasher::new(),
            remaining: len,
            count: 0,
            digest: Digest::default(),
            last: None,
            finished: false,
        };
        let magic: [u8; 8] = r.array()?;
        if &magic != MAGIC {
            return Err(bad("not a snapshot file (bad magic)"));
        }
        let version = u32::from_le_bytes(r.array()?);
        if version != FORMAT_VERSION {
            return Err(StoreError::UnknownFormat {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let meta_len_bytes: [u8; 4] = r.array()?;
        let meta_len = u32::from_le_bytes(meta_len_bytes) as u64;
        if meta_len > MAX_META_LEN {
            return Err(bad(format!("header claims {meta_len} bytes of metadata")));
        }
        let meta_bytes = r.bytes(meta_len)?;
        let stored_crc = u32::from_le_bytes(r.array()?);
        let mut crc = crc32c::crc32c(MAGIC);
        for part in [&version.to_le_bytes()[..], &meta_len_bytes, &meta_bytes] {
            crc = crc32c::crc32c_append(crc, part);
        }
        if crc != stored_crc {
            return Err(bad("header checksum mismatch"));
        }
        let meta = codec::from_payload(&meta_bytes, || "snapshot file header".into())?;
        Ok((meta, r))
    }

    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, StoreError> {
        if n > self.remaining {
            return Err(bad(format!(
                "truncated: needs {n} more bytes, {} left",
                self.remaining
            )));
        }
        let mut buf = vec![0u8; n as usize];
        self.read_exact(&mut buf)?;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut buf = [0u8; N];
        if N as u64 > self.remaining {
            return Err(bad(format!(
                "truncated: needs {N} more bytes, {} left",
                self.remaining
            )));
        }
        self.read_exact(&mut buf)?;
        Ok(buf)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), StoreError> {
        self.inp.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => bad("file is shorter than its recorded length"),
            _ => StoreError::Io(e),
        })?;
        self.remaining -= buf.len() as u64;
        self.hasher.update(buf);
        Ok(())
    }

    /// The next record, or `None` after the trailer has been read and verified.
    pub(crate) fn next(&mut self) -> Result<Option<Record>, StoreError> {
        if self.finished {
            return Ok(None);
        }
        let [tag] = self.array::<1>()?;
        if tag == END_TAG {
            return self.trailer().map(|()| None);
        }
        if tag != TAG_KV && tag != TAG_DEDUP {
            return Err(bad(format!("record {}: unknown tag {tag}", self.count)));
        }
        let key_len_bytes: [u8; 4] = self.array()?;
        let key_len = u32::from_le_bytes(key_len_bytes) as u64;
        if key_len > MAX_KEY_LEN {
            return Err(bad(format!(
                "record {}: key length {key_len} out of bounds",
                self.count
            )));
        }
        let key = self.bytes(key_len)?;
        let val_len_bytes: [u8; 4] = self.array()?;
        let val_len = u32::from_le_bytes(val_len_bytes) as u64;
        if val_len > MAX_VAL_LEN {
            return Err(bad(format!(
                "record {}: value length {val_len} out of bounds",
                self.count
            )));
        }
        let val = self.bytes(val_len)?;
        let stored_crc = u32::from_le_bytes(self.array()?);
        let mut crc = 0;
        for part in [&[tag][..], &key_len_bytes, &key, &val_len_bytes, &val] {
            crc = crc32c::crc32c_append(crc, part);
        }
        if crc != stored_crc {
            return Err(bad(format!("record {}: checksum mismatch", self.count)));
        }
        if let Some((last_tag, last_key)) = &self.last
            && (*last_tag, last_key.as_slice()) >= (tag, key.as_slice())
        {
            return Err(bad(format!("record {}: out of order", self.count)));
        }
        self.count += 1;
        self.digest.add(tag, &key, &val);
        self.last = Some((tag, key.clone()));
        Ok(Some(Record { tag, key, val }))
    }

    fn trailer(&mut self) -> Result<(), StoreError> {
        let count = u64::from_le_bytes(self.array()?);
        let digest = Digest(u128::from_le_bytes(self.array()?));
        let expected_hash = self.hasher.finalize();
        let stored_hash: [u8; 32] = self.array()?;
        if expected_hash.as_bytes() != &stored_hash {
            return Err(bad("blake3 hash mismatch"));
        }
        if count != self.count {
            return Err(bad(format!(
                "trailer says {count} records, file has {}",
                self.count
            )));
        }
        if digest != self.digest {
            return Err(bad(format!(
                "trailer digest {digest} != digest of the records {}",
                self.digest
            )));
        }
        if self.remaining != 0 {
            return Err(bad(format!(
                "{} unexpected bytes after the trailer",
                self.remaining
            )));
        }
        self.finished = true;
        Ok(())
    }

    /// Digest of the records read so far (of all of them once `next` returned `None`).
    pub(crate) fn digest(&self) -> Digest {
        self.digest
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }
}

/// Reads only the header of a snapshot file.
pub(crate) fn read_meta(snapshot: &SnapshotFile) -> Result<SnapshotMeta, StoreError> {
    Reader::new(snapshot.reader(), snapshot.len).map(|(meta, _)| meta)
}

/// Reads a whole snapshot, checking everything; returns its meta, digest and record count.
pub(crate) fn verify(snapshot: &SnapshotFile) -> Result<(SnapshotMeta, Digest, u64), StoreError> {
    let (meta, mut r) = Reader::new(snapshot.reader(), snapshot.len)?;
    while let Some(rec) = r.next()? {
        check_record_payload(&rec)?;
    }
    Ok((meta, r.digest(), r.count()))
}

/// A record's value must decode as what its tree holds.
pub(crate) fn check_record_payload(rec: &Record) -> Result<(), StoreError> {
    let what = || format!("snapshot record for key {}", codec::show_key(&rec.key));
    match rec.tag {
        TAG_KV => codec::from_payload::<lookout_types::Versioned>(&rec.val, what).map(drop),
        _ => {
            if rec.key.len() != 16 {
                return Err(StoreError::corrupt(
                    what(),
                    "dedup key is not a 16-byte request id",
                ));
            }
            codec::from_payload::<crate::layout::DedupRecord>(&rec.val, what).map(drop)
        }
    }
}

// ---- the snapshot directory ----

/// The identity of a snapshot: `{term}-{index}-{millis}` (`none-{millis}` for an empty one).
pub(crate) fn snapshot_id(meta: &SnapshotMeta) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    match &meta.last_log_id {
        Some(l) => format!("{}-{}-{millis}", l.leader_id.term, l.index),
        None => format!("none-{millis}"),
    }
}

pub(crate) fn file_name_for(id: &str) -> String {
    format!("snap-{id}.snap")
}

pub(crate) fn is_snapshot_name(name: &str) -> bool {
    name.starts_with("snap-") && name.ends_with(".snap")
}

/// Temp files (snapshots being built, copied or received) end in `.tmp`.
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.ends_with(".tmp")
}

/// Complete snapshot files in `dir`, oldest first (by last log id, then name).
pub(crate) fn list(dir: &Path) -> Result<Vec<(SnapshotMeta, PathBuf)>, StoreError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_snapshot_name(name) {
            continue;
        }
        let path = entry.path();
        match SnapshotFile::open(&path)
            .map_err(StoreError::from)
            .and_then(|f| read_meta(&f))
        {
            Ok(meta) => out.push((meta, path)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable snapshot file")
            }
        }
    }
    out.sort_by(|(ma, pa), (mb, pb)| ma.last_log_id.cmp(&mb.last_log_id).then_with(|| pa.cmp(pb)));
    Ok(out)
}

/// The newest complete snapshot in `dir`.
pub(crate) fn latest(dir: &Path) -> Result<Option<(SnapshotMeta, PathBuf)>, StoreError> {
    Ok(list(dir)?.pop())
}

/// Deletes all but the newest `keep` snapshots; `keep_path`, if given, is never deleted.
pub(crate) fn prune(dir: &Path, keep: usize, keep_path: Option<&Path>) -> Result<(), StoreError> {
    let all = list(dir)?;
    let n = all.len().saturating_sub(keep);
    for (_, path) in all.into_iter().take(n) {
        if Some(path.as_path()) == keep_path {
            continue;
        }
        tracing::debug!(path = %path.display(), "removing old snapshot");
        match std::fs::remove_file(&path) {
            // Removed concurrently (a build and an install both prune).
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            r => r?,
        }
    }
    Ok(())
}

/// Removes temp files left by a crash (only called at open, when nothing is in flight).
pub(crate) fn remove_temp_files(dir: &Path) -> Result<(), StoreError> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_str().is_some_and(is_temp_name) {
            tracing::info!(path = %entry.path().display(), "removing leftover temp file");
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Makes renames and unlinks in `dir` durable.
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The path in `dir` of the file `snapshot` is a handle to, if it is there.
pub(crate) fn find_in_dir(dir: &Path, snapshot: &SnapshotFile) -> io::Result<Option<PathBuf>> {
    use std::os::unix::fs::MetadataExt;
    let md = snapshot.file.metadata()?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(emd) = entry.metadata() else { continue };
        if emd.is_file() && emd.dev() == md.dev() && emd.ino() == md.ino() {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}
