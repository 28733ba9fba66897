//! A website's files, read into memory when its generation is built: each with its content
//! type, its ETag and, where it pays, a gzipped copy. Requests are answered from this map
//! only, never from the file system, so no request path can reach a file outside it, and a
//! reload swaps a whole site at once.

use std::{
    collections::HashMap,
    fs,
    io::{Read as _, Write as _},
    path::{Path, PathBuf},
};

use bytes::Bytes;
use http::HeaderValue;
use sha2::{Digest, Sha256};

/// Most files one website may hold.
pub const MAX_FILES: usize = 10_000;
/// Most bytes one website may hold, all files together (before compression).
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Deepest directory nesting read.
const MAX_DEPTH: usize = 32;
/// Files smaller than this are sent as they are: gzip would save less than its headers.
const MIN_GZIP_SIZE: usize = 256;

/// One file, ready to send.
#[derive(Debug)]
pub struct Asset {
    /// Its bytes.
    pub body: Bytes,
    /// Its gzip-encoded bytes, when its type compresses and compressing saved a tenth.
    pub gzip: Option<Bytes>,
    /// Its `Content-Type`.
    pub content_type: HeaderValue,
    /// Its strong ETag (a hash of its bytes); the gzipped copy's adds `-gz`.
    pub etag: HeaderValue,
    /// The gzipped copy's ETag.
    pub gzip_etag: HeaderValue,
}

/// A website's files by path relative to its directory, `/`-separated (`js/app.js`).
#[derive(Debug, Default)]
pub struct Assets {
    files: HashMap<String, Asset>,
}

impl Assets {
    /// Reads every file under `root`, or says which one could not be taken and why. Names
    /// starting with `.` (`.git`, `.env`) are not served; a symbolic link is followed only
    /// when what it names is inside `root`.
    pub fn load(root: &Path) -> Result<Assets, String> {
        Self::load_within(root, MAX_FILES, MAX_BYTES)
    }

    /// [`Assets::load`] with at most `max_files` files of `max_bytes` bytes together. The
    /// bytes are counted as read, not as listed, so a file growing meanwhile cannot pass.
    fn load_within(root: &Path, max_files: usize, max_bytes: u64) -> Result<Assets, String> {
        let canonical_root = root
            .canonicalize()
            .map_err(|e| format!("cannot read directory `{}`: {e}", root.display()))?;
        let mut walk =
            Walk { root: canonical_root, files: Vec::new(), bytes: 0, max_files, max_bytes };
        walk.dir(root, "", 0)?;
        let mut files = HashMap::with_capacity(walk.files.len());
        let mut left = max_bytes;
        for (name, path) in walk.files {
            let body = read_inside(&walk.root, &path, left)?;
            left = left.checked_sub(body.len() as u64).ok_or_else(|| too_big(max_bytes))?;
            files.insert(name.clone(), Asset::new(&name, Bytes::from(body)));
        }
        Ok(Assets { files })
    }

    /// The file at `name` (relative, `/`-separated), if the site has it.
    pub fn get(&self, name: &str) -> Option<&Asset> {
        self.files.get(name)
    }

    /// How many files there are.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there is no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// A hash of every file's name and content: equal for sites serving the same bytes.
    pub fn fingerprint(&self) -> String {
        let mut names: Vec<&String> = self.files.keys().collect();
        names.sort();
        let mut hash = Sha256::new();
        for name in names {
            hash.update(name.as_bytes());
            hash.update(self.files[name].etag.as_bytes());
        }
        hash.finalize()[..12].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The bytes of `path`, at most `limit` + 1 of them, provided the file opened is a regular
/// file inside `root` (canonical) and not hidden there. Checked on the open file, not on
/// the name: a link swapped in after the walk listed the path is caught, and a FIFO put in
/// its place cannot block the load.
fn read_inside(root: &Path, path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::os::{fd::AsRawFd as _, unix::fs::OpenOptionsExt as _};
    let cannot = |e: std::io::Error| format!("cannot read `{}`: {e}", path.display());
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(cannot)?;
    if !file.metadata().map_err(cannot)?.is_file() {
        return Err(format!("`{}` is no longer a regular file", path.display()));
    }
    let real = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .or_else(|_| path.canonicalize())
        .map_err(cannot)?;
    let Ok(inside) = real.strip_prefix(root) else {
        return Err(format!(
            "`{}` is `{}`, outside the site's directory: copy it in instead",
            path.display(),
            real.display()
        ));
    };
    if inside.components().any(|c| c.as_os_str().as_encoded_bytes().starts_with(b".")) {
        return Err(format!(
            "`{}` is the hidden file `{}`: hidden files are not served, even through a link",
            path.display(),
            inside.display()
        ));
    }
    let mut body = Vec::new();
    file.take(limit + 1).read_to_end(&mut body).map_err(cannot)?;
    Ok(body)
}

/// The files found so far, and their total size, to stop at the limits.
struct Walk {
    root: PathBuf,
    files: Vec<(String, PathBuf)>,
    bytes: u64,
    max_files: usize,
    max_bytes: u64,
}

fn too_big(max_bytes: u64) -> String {
    if max_bytes >= 1 << 20 {
        format!("more than {} MiB of files", max_bytes >> 20)
    } else {
        format!("more than {max_bytes} bytes of files")
    }
}

impl Walk {
    fn dir(&mut self, dir: &Path, prefix: &str, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("`{}` is nested more than {MAX_DEPTH} levels", dir.display()));
        }
        let entries =
            fs::read_dir(dir).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
            let path = entry.path();
            let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
                return Err(format!("`{}`: a file name must be UTF-8", path.display()));
            };
            if file_name.starts_with('.') {
                continue;
            }
            let name = format!("{prefix}{file_name}");
            let meta = fs::metadata(&path)
                .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
            if entry.file_type().is_ok_and(|t| t.is_symlink()) {
                let target = path.canonicalize().map_err(|e| format!("`{name}`: {e}"))?;
                if !target.starts_with(&self.root) {
                    return Err(format!(
                        "`{}` links to `{}`, outside the site's directory: copy it in instead",
                        path.display(),
                        target.display()
                    ));
                }
            }
            if meta.is_dir() {
                self.dir(&path, &format!("{name}/"), depth + 1)?;
            } else if meta.is_file() {
                self.bytes += meta.len();
                if self.files.len() >= self.max_files {
                    return Err(format!("more than {} files", self.max_files));
                }
                if self.bytes > self.max_bytes {
                    return Err(too_big(self.max_bytes));
                }
                self.files.push((name, path));
            }
            // Sockets, FIFOs and devices are not content.
        }
        Ok(())
    }
}

impl Asset {
    fn new(name: &str, body: Bytes) -> Asset {
        let mime = mime_guess::from_path(name).first_or_octet_stream();
        let text = mime.type_() == mime_guess::mime::TEXT
            || matches!(mime.subtype().as_str(), "javascript" | "json" | "xml" | "svg")
            || mime.suffix().is_some_and(|s| matches!(s.as_str(), "json" | "xml"));
        let content_type =
            if mime.type_() == mime_guess::mime::TEXT || mime.subtype() == "javascript" {
                format!("{}; charset=utf-8", mime.essence_str())
            } else {
                mime.essence_str().to_string()
            };
        let hash = Sha256::digest(&body);
        let hex: String = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
        let gzip = (text && body.len() >= MIN_GZIP_SIZE).then(|| gzipped(&body)).flatten();
        Asset {
            content_type: HeaderValue::from_str(&content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            etag: HeaderValue::from_str(&format!("\"{hex}\""))
                .unwrap_or(HeaderValue::from_static("\"\"")),
            gzip_etag: HeaderValue::from_str(&format!("\"{hex}-gz\""))
                .unwrap_or(HeaderValue::from_static("\"\"")),
            gzip: gzip.filter(|g| g.len() * 10 < body.len() * 9),
            body,
        }
    }
}

fn gzipped(body: &[u8]) -> Option<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body).ok()?;
    encoder.finish().ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_get_types_etags_and_gzip_where_it_pays() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("js")).unwrap();
        fs::write(dir.path().join("index.html"), "<p>hello</p>".repeat(100)).unwrap();
        fs::write(dir.path().join("js/app.js"), "console.log(1)").unwrap();
        fs::write(dir.path().join("logo.png"), [0x89, b'P', b'N', b'G']).unwrap();
        fs::write(dir.path().join(".env"), "SECRET=1").unwrap();
        let assets = Assets::load(dir.path()).unwrap();
        assert_eq!(assets.len(), 3, ".env is not served");
        let index = assets.get("index.html").unwrap();
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert!(index.gzip.as_ref().is_some_and(|g| g.len() < index.body.len()));
        let app = assets.get("js/app.js").unwrap();
        assert_eq!(app.content_type, "text/javascript; charset=utf-8");
        assert!(app.gzip.is_none(), "too small to compress");
        assert_ne!(app.etag, index.etag);
        assert_eq!(assets.get("logo.png").unwrap().content_type, "image/png");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_out_of_the_site_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        fs::create_dir(&site).unwrap();
        fs::write(dir.path().join("secret.txt"), "no").unwrap();
        fs::write(site.join("a.txt"), "yes").unwrap();
        std::os::unix::fs::symlink(site.join("a.txt"), site.join("b.txt")).unwrap();
        assert_eq!(Assets::load(&site).unwrap().len(), 2, "a link inside is followed");
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), site.join("c.txt")).unwrap();
        let err = Assets::load(&site).unwrap_err();
        assert!(err.contains("outside the site's directory"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_to_a_hidden_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        fs::create_dir_all(site.join(".git")).unwrap();
        fs::write(site.join(".git/config"), "secret").unwrap();
        fs::write(site.join(".env"), "SECRET=1").unwrap();
        std::os::unix::fs::symlink(site.join(".env"), site.join("env.txt")).unwrap();
        let err = Assets::load(&site).unwrap_err();
        assert!(err.contains("hidden file `.env`"), "{err}");
        fs::remove_file(site.join("env.txt")).unwrap();
        std::os::unix::fs::symlink(site.join(".git"), site.join("public")).unwrap();
        let err = Assets::load(&site).unwrap_err();
        assert!(err.contains("hidden file `.git/config`"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_file_swapped_for_a_link_or_a_fifo_after_the_walk_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        fs::create_dir(&site).unwrap();
        fs::write(dir.path().join("secret.txt"), "outside").unwrap();
        let root = site.canonicalize().unwrap();
        let swapped = site.join("a.txt");
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), &swapped).unwrap();
        let err = read_inside(&root, &swapped, 100).unwrap_err();
        assert!(err.contains("outside the site's directory"), "{err}");
        fs::remove_file(&swapped).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&swapped).status().unwrap();
        assert!(made.success());
        let err = read_inside(&root, &swapped, 100).unwrap_err();
        assert!(err.contains("no longer a regular file"), "{err}");
    }

    #[test]
    fn bytes_are_counted_as_read() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), "0123456789").unwrap();
        let root = dir.path().canonicalize().unwrap();
        // A file that grew past what is left since the walk listed it is cut at limit + 1.
        assert_eq!(read_inside(&root, &dir.path().join("a.txt"), 4).unwrap().len(), 5);
    }

    #[test]
    fn a_site_over_its_file_or_byte_limits_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..4 {
            fs::write(dir.path().join(format!("{i}.txt")), "0123456789").unwrap();
        }
        assert_eq!(Assets::load_within(dir.path(), 4, 40).unwrap().len(), 4, "at the limits");
        let err = Assets::load_within(dir.path(), 3, 1000).unwrap_err();
        assert_eq!(err, "more than 3 files");
        let err = Assets::load_within(dir.path(), 100, 39).unwrap_err();
        assert_eq!(err, "more than 39 bytes of files");
        assert_eq!(too_big(MAX_BYTES), "more than 64 MiB of files");
    }
}
