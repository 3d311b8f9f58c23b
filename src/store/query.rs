//! Reads of rows that are not in memory: search and the retention rules (reference C.12).

use crate::task::{Action, Mode, State, TaskId};
use rusqlite::Connection;
use rusqlite::types::Value;

/// What `search` matches: one app's tasks created in `[after, before]` (Unix ms).
#[derive(Clone, Debug)]
pub struct Filter {
    pub uid: u64,
    pub after: u64,
    pub before: u64,
    pub state: Option<State>,
    pub action: Option<Action>,
    pub mode: Option<Mode>,
}

/// Ids of the matching tasks, oldest first.
pub fn search(c: &Connection, f: &Filter) -> rusqlite::Result<Vec<TaskId>> {
    let mut sql =
        String::from("SELECT task_id FROM tasks WHERE uid = ?1 AND ctime BETWEEN ?2 AND ?3");
    let mut args: Vec<Value> = vec![
        Value::Integer(f.uid as i64),
        Value::Integer(f.after.min(i64::MAX as u64) as i64),
        Value::Integer(f.before.min(i64::MAX as u64) as i64),
    ];
    let mut also = |col: &str, v: Option<u8>| {
        if let Some(v) = v {
            args.push(Value::Integer(v.into()));
            sql.push_str(&format!(" AND {col} = ?{}", args.len()));
        }
    };
    also("state", f.state.map(|s| s as u8));
    also("action", f.action.map(|a| a as u8));
    also("mode", f.mode.map(|m| m as u8));
    sql.push_str(" ORDER BY ctime, task_id");
    let mut stmt = c.prepare_cached(&sql)?;
    let ids = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get(0))?;
    ids.collect()
}

/// How long a finished task stays in the store (reference C.12): REMOVED ones go at the next
/// pass (after `REMOVED_GRACE_MS`, so a caller that just removed a task can still read it),
/// COMPLETED ones a day after they completed, every other one after a week without change.
pub(crate) const REMOVED_GRACE_MS: u64 = 30_000;
pub(crate) const COMPLETED_KEEP_MS: u64 = 24 * 3600 * 1000;
pub(crate) const OTHER_KEEP_MS: u64 = 7 * 24 * 3600 * 1000;
/// Rows looked at per pass (the reference deletes at most 10 × 1000 per pass).
pub(crate) const PASS_LIMIT: u32 = 10_000;

/// A row the retention rules let go, with what the caller needs to clean up after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expired {
    pub id: TaskId,
    pub state: State,
    pub mtime: u64,
    pub action: Action,
    pub target: String,
}

/// Rows expired at `now` (ms). Tasks in an active state (WAITING, RUNNING, RETRYING) are
/// never expired: their mtime says when they last changed state, not when they last moved.
pub fn expired(c: &Connection, now: u64) -> rusqlite::Result<Vec<Expired>> {
    let before = |age: u64| now.saturating_sub(age).min(i64::MAX as u64) as i64;
    let mut stmt = c.prepare_cached(
        "SELECT task_id, state, mtime, action, target FROM tasks
         WHERE (state = ?1 AND mtime < ?2)
            OR (state = ?3 AND mtime < ?4)
            OR (state NOT IN (?1, ?3, ?5, ?6, ?7) AND mtime < ?8)
         ORDER BY mtime LIMIT ?9",
    )?;
    let rows = stmt.query_map(
        rusqlite::params![
            State::Removed as u8,
            before(REMOVED_GRACE_MS),
            State::Completed as u8,
            before(COMPLETED_KEEP_MS),
            State::Waiting as u8,
            State::Running as u8,
            State::Retrying as u8,
            before(OTHER_KEEP_MS),
            PASS_LIMIT,
        ],
        |r| {
            let state: u8 = r.get(1)?;
            let action: u8 = r.get(3)?;
            Ok((r.get(0)?, state, r.get::<_, i64>(2)?, action, r.get(4)?))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (id, state, mtime, action, target) = row?;
        // A row whose state or action no longer decodes is expired like any other.
        out.push(Expired {
            id,
            state: State::from_u8(state).unwrap_or(State::Failed),
            mtime: mtime as u64,
            action: Action::from_u8(action).unwrap_or(Action::Download),
            target,
        });
    }
    Ok(out)
}
