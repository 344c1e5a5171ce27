//! Reading a SQLite database without changing it, for `doctor` and `size`.
//!
//! A tidepool-sqlite pool opens its file read-write, creates it when it is
//! missing and switches it to WAL: right for an application, wrong for a
//! tool that only looks. Here the file must already exist, the journal mode
//! is read from the file's header (WAL is the one mode stored in the file;
//! the others are chosen by each connection), and the connection is opened
//! read-only. A WAL database that nobody has open (no `-wal` and `-shm`
//! beside it) is opened as immutable as well, because a read-only reader
//! would otherwise leave those two side files behind.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tidepool_sqlite::rusqlite::{Connection, OpenFlags};

/// The first 16 bytes of every SQLite database file.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// How the database keeps its journal, as its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journal {
    /// Write-ahead log (`journal_mode = wal`).
    Wal,
    /// A rollback journal (`delete`, `truncate` or `persist`: which one is
    /// a choice each connection makes, not stored in the file).
    Rollback,
}

/// What the file itself says, before anything opens it.
#[derive(Debug, Clone)]
pub struct FileFacts {
    pub path: PathBuf,
    pub bytes: u64,
    /// `None` for an empty file (SQLite reads it as a new, empty database).
    pub journal: Option<Journal>,
    /// `-wal` and `-shm` both exist: some connection has (or had) the
    /// database open in WAL mode.
    pub side_files: bool,
}

/// Looks at the file without opening it as a database. The error says what
/// is wrong in words (missing, a directory, not SQLite).
pub fn examine(path: &Path) -> Result<FileFacts, String> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{} does not exist (nothing was created: the doctor only reads)",
                path.display()
            ))
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    let mut header = [0u8; 100];
    let read = {
        use std::io::Read;
        let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut filled = 0;
        while filled < header.len() {
            match file.read(&mut header[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => return Err(format!("reading {}: {e}", path.display())),
            }
        }
        filled
    };
    let journal = if read == 0 {
        None
    } else if read < header.len() || &header[..16] != MAGIC {
        return Err(format!(
            "{} is not a SQLite database (its first bytes are not the SQLite header)",
            path.display()
        ));
    } else if header[18] == 2 || header[19] == 2 {
        // Bytes 18 and 19 are the file format write and read versions:
        // 1 for a rollback journal, 2 for WAL.
        Some(Journal::Wal)
    } else {
        Some(Journal::Rollback)
    };
    let side = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        Path::new(&p).exists()
    };
    Ok(FileFacts {
        path: path.to_path_buf(),
        bytes: meta.len(),
        journal,
        side_files: side("-wal") && side("-shm"),
    })
}

/// A `file:` URI for `path`, percent-encoded (SQLite decodes `%HH`; `?`,
/// `#` and `%` in a path would otherwise be read as URI syntax).
fn file_uri(path: &Path, query: &str) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let text = absolute.to_string_lossy().replace('\\', "/");
    let mut uri = String::from("file:");
    if !text.starts_with('/') {
        uri.push('/');
    }
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"/._~-:".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push('?');
    uri.push_str(query);
    uri
}

/// Opens the database read-only, creating nothing; immutable when it is a
/// WAL database nobody has open (see the module docs).
pub fn open_read_only(facts: &FileFacts) -> Result<Connection, String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let query = if facts.journal == Some(Journal::Wal) && !facts.side_files {
        "mode=ro&immutable=1"
    } else {
        "mode=ro"
    };
    Connection::open_with_flags(file_uri(&facts.path, query), flags).map_err(|e| e.to_string())
}

/// An empty in-memory database of this process, read-only like the rest,
/// for `sqlite::memory:` URLs.
pub fn open_memory() -> Result<Connection, String> {
    Connection::open_with_flags(
        ":memory:",
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())
}

/// The SQLite library's version.
pub fn version(conn: &Connection) -> Option<String> {
    conn.query_row("SELECT sqlite_version()", [], |r| r.get(0))
        .ok()
}

/// `count` round trips of `SELECT 1`, sorted; the first error ends them.
pub fn pings(conn: &Connection, count: u32) -> Result<Vec<Duration>, String> {
    let mut stmt = conn.prepare("SELECT 1").map_err(|e| e.to_string())?;
    let mut took = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let started = Instant::now();
        stmt.query_row([], |r| r.get::<_, i64>(0))
            .map_err(|e| e.to_string())?;
        took.push(started.elapsed());
    }
    took.sort();
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(dir: &Path, name: &str, wal: bool) -> PathBuf {
        let path = dir.join(name);
        let c = Connection::open(&path).unwrap();
        if wal {
            c.query_row("PRAGMA journal_mode = wal", [], |_| Ok(()))
                .unwrap();
        }
        c.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        path
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_header_tells_wal_from_a_rollback_journal() {
        let dir = tempfile::tempdir().unwrap();
        let wal = examine(&db(dir.path(), "w.db", true)).unwrap();
        assert_eq!(wal.journal, Some(Journal::Wal));
        let rollback = examine(&db(dir.path(), "d.db", false)).unwrap();
        assert_eq!(rollback.journal, Some(Journal::Rollback));
    }

    #[test]
    fn a_missing_file_is_refused_and_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typo.db");
        let err = examine(&path).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "x".repeat(200)).unwrap();
        assert!(examine(&path)
            .unwrap_err()
            .contains("not a SQLite database"));
    }

    #[test]
    fn reading_leaves_the_directory_and_the_journal_mode_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let odd = db(dir.path(), "odd name?#%.db", true);
        let plain = db(dir.path(), "d.db", false);
        let before = listing(dir.path());
        for path in [&odd, &plain] {
            let facts = examine(path).unwrap();
            let conn = open_read_only(&facts).unwrap();
            assert!(version(&conn).is_some());
            assert_eq!(pings(&conn, 3).unwrap().len(), 3);
            assert!(conn.execute_batch("CREATE TABLE u (y)").is_err());
            drop(conn);
        }
        assert_eq!(listing(dir.path()), before);
        assert_eq!(examine(&plain).unwrap().journal, Some(Journal::Rollback));
    }
}
