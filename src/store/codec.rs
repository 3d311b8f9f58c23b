//! Row layout of the `tasks` table and the conversions to and from `TaskRecord`.

use crate::config::{TaskConfig, UploadFile};
use crate::task::{
    Action, FileState, Mode, Network, Progress, Reason, State, TaskId, TaskRecord, Version,
};
use rusqlite::types::ToSql;
use rusqlite::{Connection, Row, params_from_iter};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    task_id INTEGER PRIMARY KEY,
    uid INTEGER NOT NULL,
    bundle TEXT NOT NULL,
    action INTEGER NOT NULL,
    version INTEGER NOT NULL,
    mode INTEGER NOT NULL,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    method TEXT NOT NULL,
    headers TEXT NOT NULL,
    data TEXT NOT NULL,
    target TEXT NOT NULL,
    network INTEGER NOT NULL,
    metered INTEGER NOT NULL,
    roaming INTEGER NOT NULL,
    retry INTEGER NOT NULL,
    redirect INTEGER NOT NULL,
    background INTEGER NOT NULL,
    precise INTEGER NOT NULL,
    overwrite INTEGER NOT NULL,
    begins INTEGER NOT NULL,
    ends INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    token TEXT NOT NULL,
    proxy TEXT NOT NULL,
    connect_timeout INTEGER NOT NULL,
    total_timeout INTEGER NOT NULL,
    min_speed INTEGER NOT NULL,
    min_speed_duration INTEGER NOT NULL,
    max_speed INTEGER NOT NULL,
    certs_path TEXT NOT NULL,
    state INTEGER NOT NULL,
    reason INTEGER NOT NULL,
    ctime INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    tries INTEGER NOT NULL,
    mime_type TEXT NOT NULL,
    idx INTEGER NOT NULL,
    processed INTEGER NOT NULL,
    total_processed INTEGER NOT NULL,
    sizes TEXT NOT NULL,
    extras TEXT NOT NULL,
    etag TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    durable_offset INTEGER NOT NULL,
    http_status INTEGER NOT NULL,
    curl_code INTEGER NOT NULL,
    detail TEXT NOT NULL,
    file_specs TEXT NOT NULL DEFAULT '',
    form_items TEXT NOT NULL DEFAULT '',
    multipart INTEGER NOT NULL DEFAULT 0,
    config_idx INTEGER NOT NULL DEFAULT 0,
    each_file_status TEXT NOT NULL DEFAULT '',
    sha256 TEXT NOT NULL DEFAULT ''
);
";

/// Columns added by schema version 2 (uploads), with their defaults for older rows.
pub const V2_COLUMNS: [(&str, &str); 6] = [
    ("file_specs", "TEXT NOT NULL DEFAULT ''"),
    ("form_items", "TEXT NOT NULL DEFAULT ''"),
    ("multipart", "INTEGER NOT NULL DEFAULT 0"),
    ("config_idx", "INTEGER NOT NULL DEFAULT 0"),
    ("each_file_status", "TEXT NOT NULL DEFAULT ''"),
    ("sha256", "TEXT NOT NULL DEFAULT ''"),
];

/// The columns written once, when the task is created (who, what, when).
const FIXED_COLUMNS: &str = "task_id, uid, bundle, action, version, mode, url, title, description,
    method, headers, data, target, network, metered, roaming, retry, redirect, background,
    precise, overwrite, begins, ends, priority, token, proxy, connect_timeout, total_timeout,
    min_speed, min_speed_duration, max_speed, certs_path, ctime, file_specs, form_items,
    multipart, config_idx, sha256";

/// The columns every later save rewrites, in the order of `StatusRow::params`.
const STATUS_COLUMNS: [&str; 17] = [
    "state",
    "reason",
    "mtime",
    "tries",
    "mime_type",
    "idx",
    "processed",
    "total_processed",
    "sizes",
    "extras",
    "etag",
    "last_modified",
    "durable_offset",
    "http_status",
    "curl_code",
    "detail",
    "each_file_status",
];

/// Every column, for reading rows back.
static COLUMNS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{FIXED_COLUMNS}, {}", STATUS_COLUMNS.join(", ")));

/// Header lists as `name:value` lines: names cannot hold ':' and values no newline.
fn encode_pairs(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect()
}

fn decode_pairs(s: &str) -> Vec<(String, String)> {
    s.lines()
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

/// Lists of string tuples: fields joined by TAB, rows by LF; `\\`, TAB and LF escaped, so any
/// text (paths included) survives.
fn encode_rows(rows: impl Iterator<Item = Vec<String>>) -> String {
    let esc = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('\t', "\\t")
            .replace('\n', "\\n")
    };
    rows.map(|r| r.iter().map(|f| esc(f)).collect::<Vec<_>>().join("\t") + "\n")
        .collect()
}

fn decode_rows(s: &str) -> Vec<Vec<String>> {
    s.lines()
        .map(|line| {
            let mut fields = vec![String::new()];
            let mut chars = line.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\t' => fields.push(String::new()),
                    '\\' => {
                        let last = fields.last_mut().expect("never empty");
                        match chars.next() {
                            Some('t') => last.push('\t'),
                            Some('n') => last.push('\n'),
                            Some(other) => last.push(other),
                            None => {}
                        }
                    }
                    c => fields.last_mut().expect("never empty").push(c),
                }
            }
            fields
        })
        .collect()
}

/// Writes the whole row of `r` (a new task's, or one the store does not have).
pub fn upsert(c: &Connection, r: &TaskRecord) -> rusqlite::Result<()> {
    let g = &r.config;
    // Built once: the statement cache is keyed by this text.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let params: Vec<String> = (1..=COLUMNS.split(',').count())
            .map(|i| format!("?{i}"))
            .collect();
        format!(
            "INSERT OR REPLACE INTO tasks ({}) VALUES ({})",
            *COLUMNS,
            params.join(", ")
        )
    });
    let target = g.target.to_string_lossy();
    let (headers, files, form) = (
        encode_pairs(&g.headers),
        encode_rows(g.files.iter().map(|f| {
            vec![
                f.path.to_string_lossy().into_owned(),
                f.name.clone(),
                f.filename.clone(),
                f.content_type.clone(),
            ]
        })),
        encode_rows(g.form.iter().map(|(k, v)| vec![k.clone(), v.clone()])),
    );
    let (uid, ctime) = (r.uid as i64, r.ctime as i64);
    let (action, version, mode, network) = (
        g.action as u8,
        g.version as u8,
        g.mode as u8,
        g.network as u8,
    );
    let (begins, connect, total) = (
        g.begins as i64,
        g.connect_timeout_s as i64,
        g.total_timeout_s as i64,
    );
    let (min_speed, min_speed_duration, max_speed) = (
        g.min_speed as i64,
        g.min_speed_duration_s as i64,
        g.max_speed as i64,
    );
    let fixed: [&dyn ToSql; 38] = [
        &r.id,
        &uid,
        &r.bundle,
        &action,
        &version,
        &mode,
        &g.url,
        &g.title,
        &g.description,
        &g.method,
        &headers,
        &g.data,
        &target,
        &network,
        &g.metered,
        &g.roaming,
        &g.retry,
        &g.redirect,
        &g.background,
        &g.precise,
        &g.overwrite,
        &begins,
        &g.ends,
        &g.priority,
        &g.token,
        &g.proxy,
        &connect,
        &total,
        &min_speed,
        &min_speed_duration,
        &max_speed,
        &g.ca_file,
        &ctime,
        &files,
        &form,
        &g.multipart,
        &g.index,
        &g.sha256,
    ];
    let status = StatusRow::new(r);
    c.prepare_cached(&SQL)?
        .execute(params_from_iter(fixed.iter().chain(&status.params())))?;
    Ok(())
}

/// Saves a stored task's state and progress: the columns that change after its row is
/// inserted (owner, config and ctime never do), so a save binds a third of the row and
/// rewrites no index. False when there is no row to update.
pub fn update_status(c: &Connection, r: &TaskRecord) -> rusqlite::Result<bool> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let sets: Vec<String> = STATUS_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, col)| format!("{col} = ?{}", i + 1))
            .collect();
        format!(
            "UPDATE tasks SET {} WHERE task_id = ?{}",
            sets.join(", "),
            STATUS_COLUMNS.len() + 1
        )
    });
    let status = StatusRow::new(r);
    let id: [&dyn ToSql; 1] = [&r.id];
    let changed = c
        .prepare_cached(&SQL)?
        .execute(params_from_iter(status.params().iter().chain(&id)))?;
    Ok(changed > 0)
}

/// The status columns of a record, converted for binding.
struct StatusRow<'a> {
    r: &'a TaskRecord,
    state: u8,
    reason: u8,
    mtime: i64,
    processed: i64,
    total_processed: i64,
    durable_offset: i64,
    sizes: String,
    extras: String,
    file_states: String,
}

impl<'a> StatusRow<'a> {
    fn new(r: &'a TaskRecord) -> StatusRow<'a> {
        StatusRow {
            r,
            state: r.state as u8,
            reason: r.reason as u8,
            mtime: r.mtime as i64,
            processed: r.progress.processed as i64,
            total_processed: r.progress.total_processed as i64,
            durable_offset: r.durable_offset as i64,
            sizes: encode_sizes(&r.progress.sizes),
            extras: encode_pairs(&r.extras),
            file_states: encode_file_states(&r.file_states),
        }
    }

    /// In the order of `STATUS_COLUMNS`.
    fn params(&self) -> [&dyn ToSql; 17] {
        let r = self.r;
        [
            &self.state,
            &self.reason,
            &self.mtime,
            &r.tries,
            &r.mime_type,
            &r.progress.index,
            &self.processed,
            &self.total_processed,
            &self.sizes,
            &self.extras,
            &r.etag,
            &r.last_modified,
            &self.durable_offset,
            &r.http_status,
            &r.curl_code,
            &r.detail,
            &self.file_states,
        ]
    }
}

fn encode_sizes(sizes: &[i64]) -> String {
    let sizes: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
    sizes.join(",")
}

fn encode_file_states(states: &[FileState]) -> String {
    encode_rows(
        states
            .iter()
            .map(|f| vec![(f.reason as u8).to_string(), f.message.clone()]),
    )
}

fn bad(what: &str, v: i64) -> rusqlite::Error {
    rusqlite::Error::InvalidParameterName(format!("stored {what} {v} is not valid"))
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<TaskRecord> {
    let action: u8 = row.get("action")?;
    let version: u8 = row.get("version")?;
    let mode: u8 = row.get("mode")?;
    let state: u8 = row.get("state")?;
    let reason: u8 = row.get("reason")?;
    let network: u8 = row.get("network")?;
    let config = TaskConfig {
        action: Action::from_u8(action).ok_or_else(|| bad("action", action.into()))?,
        version: if version == Version::Api10 as u8 {
            Version::Api10
        } else {
            Version::Api9
        },
        mode: if mode == Mode::Foreground as u8 {
            Mode::Foreground
        } else {
            Mode::Background
        },
        url: row.get("url")?,
        title: row.get("title")?,
        description: row.get("description")?,
        method: row.get("method")?,
        headers: decode_pairs(&row.get::<_, String>("headers")?),
        data: row.get("data")?,
        target: row.get::<_, String>("target")?.into(),
        network: Network::from_u32_lenient(network.into()),
        metered: row.get("metered")?,
        roaming: row.get("roaming")?,
        retry: row.get("retry")?,
        redirect: row.get("redirect")?,
        background: row.get("background")?,
        precise: row.get("precise")?,
        overwrite: row.get("overwrite")?,
        begins: row.get::<_, i64>("begins")? as u64,
        ends: row.get("ends")?,
        priority: row.get("priority")?,
        token: row.get("token")?,
        proxy: row.get("proxy")?,
        connect_timeout_s: row.get::<_, i64>("connect_timeout")? as u64,
        total_timeout_s: row.get::<_, i64>("total_timeout")? as u64,
        min_speed: row.get::<_, i64>("min_speed")? as u64,
        min_speed_duration_s: row.get::<_, i64>("min_speed_duration")? as u64,
        max_speed: row.get::<_, i64>("max_speed")? as u64,
        ca_file: row.get("certs_path")?,
        files: decode_rows(&row.get::<_, String>("file_specs")?)
            .into_iter()
            .filter_map(|f| match <[String; 4]>::try_from(f) {
                Ok([path, name, filename, content_type]) => Some(UploadFile {
                    path: path.into(),
                    name,
                    filename,
                    content_type,
                }),
                Err(_) => None,
            })
            .collect(),
        form: decode_rows(&row.get::<_, String>("form_items")?)
            .into_iter()
            .filter_map(|f| <[String; 2]>::try_from(f).ok().map(|[k, v]| (k, v)))
            .collect(),
        multipart: row.get("multipart")?,
        index: row.get("config_idx")?,
        sha256: row.get("sha256")?,
    };
    let state = State::from_u8(state).ok_or_else(|| bad("state", state.into()))?;
    let sizes: String = row.get("sizes")?;
    Ok(TaskRecord {
        id: row.get("task_id")?,
        uid: row.get::<_, i64>("uid")? as u64,
        bundle: row.get("bundle")?,
        config: std::sync::Arc::new(config),
        state,
        reason: Reason::from_u8(reason).unwrap_or(Reason::OthersError),
        ctime: row.get::<_, i64>("ctime")? as u64,
        mtime: row.get::<_, i64>("mtime")? as u64,
        tries: row.get("tries")?,
        mime_type: row.get("mime_type")?,
        progress: Progress {
            state,
            index: row.get("idx")?,
            processed: row.get::<_, i64>("processed")? as u64,
            total_processed: row.get::<_, i64>("total_processed")? as u64,
            sizes: sizes.split(',').filter_map(|s| s.parse().ok()).collect(),
        },
        extras: decode_pairs(&row.get::<_, String>("extras")?),
        etag: row.get("etag")?,
        last_modified: row.get("last_modified")?,
        durable_offset: row.get::<_, i64>("durable_offset")? as u64,
        http_status: row.get("http_status")?,
        curl_code: row.get("curl_code")?,
        detail: row.get("detail")?,
        file_states: decode_rows(&row.get::<_, String>("each_file_status")?)
            .into_iter()
            .filter_map(|f| match <[String; 2]>::try_from(f) {
                Ok([code, message]) => Some(FileState {
                    reason: code
                        .parse()
                        .ok()
                        .and_then(Reason::from_u8)
                        .unwrap_or(Reason::OthersError),
                    message,
                }),
                Err(_) => None,
            })
            .collect(),
    })
}

/// One stored task; `None` when there is no such row or it no longer decodes.
pub fn load_one(c: &Connection, id: TaskId) -> rusqlite::Result<Option<TaskRecord>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {} FROM tasks WHERE task_id = ?1",
        *COLUMNS
    ))?;
    let mut rows = stmt.query_map([id], from_row)?;
    match rows.next() {
        Some(Ok(t)) => Ok(Some(t)),
        Some(Err(e)) => {
            log::error!("store: task {id} is unreadable: {e}");
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Every stored task, oldest first. Rows that no longer decode are logged and skipped.
pub fn load_all(c: &Connection) -> rusqlite::Result<Vec<TaskRecord>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {} FROM tasks ORDER BY ctime, task_id",
        *COLUMNS
    ))?;
    let rows = stmt.query_map([], from_row)?;
    let mut out = Vec::new();
    for r in rows {
        match r {
            Ok(t) => out.push(t),
            Err(e) => log::error!("store: skipping an unreadable task row: {e}"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_round_trip_any_text() {
        let rows = vec![
            vec!["a\tb".to_owned(), "c\nd\\e".to_owned(), String::new()],
            vec!["x".to_owned()],
        ];
        assert_eq!(
            super::decode_rows(&super::encode_rows(rows.clone().into_iter())),
            rows
        );
    }
}
