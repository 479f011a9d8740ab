//! SQL functions over vector BLOBs, registered on every shard connection.
//!
//! | function | result |
//! |---|---|
//! | `vec_distance_cosine(a, b)` | `1 − a·b / (|a| |b|)` (NULL-free: error for a zero vector) |
//! | `vec_distance_l2(a, b)` | Euclidean distance `|a − b|` |
//! | `vec_dot(a, b)` | inner product `a·b` |
//! | `vec_norm(a)` | L2 norm `|a|` |
//!
//! Arguments are f32 BLOBs (little-endian, `4 × dim` bytes, the shard's own format and
//! sqlite-vec's) or JSON array text such as `'[1, 2.5, -3]'`. Vectors of different lengths, a
//! BLOB whose length is not a multiple of 4, NaN/Inf components or any other type are SQL errors
//! with a message naming the problem. Results are REAL (f64), computed with the same kernels as
//! search.

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::Connection;

use crate::codec;
use crate::distance;
use crate::error::Error;

fn user_err(e: Error) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(Box::new(e))
}

fn arg(ctx: &Context<'_>, i: usize, name: &str) -> rusqlite::Result<Vec<f32>> {
    let v = match ctx.get_raw(i) {
        ValueRef::Blob(b) => codec::decode_any(b).map_err(user_err)?,
        ValueRef::Text(t) => {
            let parsed: Vec<f32> = serde_json::from_slice(t).map_err(|e| {
                user_err(Error::InvalidArgument(format!(
                    "{name}: argument {} is not a JSON array of numbers: {e}",
                    i + 1
                )))
            })?;
            parsed
        }
        other => {
            return Err(user_err(Error::InvalidArgument(format!(
                "{name}: argument {} must be a vector BLOB or JSON array, got {:?}",
                i + 1,
                other.data_type()
            ))))
        }
    };
    codec::validate(&v, None).map_err(user_err)?;
    Ok(v)
}

fn pair(ctx: &Context<'_>, name: &str) -> rusqlite::Result<(Vec<f32>, Vec<f32>)> {
    let a = arg(ctx, 0, name)?;
    let b = arg(ctx, 1, name)?;
    if a.len() != b.len() {
        return Err(user_err(Error::InvalidArgument(format!(
            "{name}: vector length mismatch: {} vs {}",
            a.len(),
            b.len()
        ))));
    }
    Ok((a, b))
}

/// Registers `vec_distance_cosine`, `vec_distance_l2`, `vec_dot` and `vec_norm` on `conn`.
/// Shards do this on open; call it on your own connections to use the functions there.
///
/// # Errors
/// [`Error::Sqlite`] if SQLite refuses the registration.
pub fn register_functions(conn: &Connection) -> crate::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("vec_distance_cosine", 2, flags, |ctx| {
        let (a, b) = pair(ctx, "vec_distance_cosine")?;
        let (na, nb) = (distance::norm(&a), distance::norm(&b));
        if na == 0.0 || nb == 0.0 {
            return Err(user_err(Error::ZeroVector));
        }
        Ok(1.0 - f64::from(distance::dot(&a, &b)) / (f64::from(na) * f64::from(nb)))
    })?;
    conn.create_scalar_function("vec_distance_l2", 2, flags, |ctx| {
        let (a, b) = pair(ctx, "vec_distance_l2")?;
        Ok(f64::from(distance::l2sq(&a, &b)).sqrt())
    })?;
    conn.create_scalar_function("vec_dot", 2, flags, |ctx| {
        let (a, b) = pair(ctx, "vec_dot")?;
        Ok(f64::from(distance::dot(&a, &b)))
    })?;
    conn.create_scalar_function("vec_norm", 1, flags, |ctx| {
        let a = arg(ctx, 0, "vec_norm")?;
        Ok(f64::from(distance::norm(&a)))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(conn: &Connection, sql: &str) -> rusqlite::Result<f64> {
        conn.query_row(sql, [], |r| r.get(0))
    }

    #[test]
    fn functions_compute_and_refuse() {
        let conn = Connection::open_in_memory().unwrap();
        register_functions(&conn).unwrap();
        let a = codec::encode(&[3.0, 4.0]);
        let b = codec::encode(&[4.0, 3.0]);
        let d: f64 = conn
            .query_row("SELECT vec_dot(?1, ?2)", [&a, &b], |r| r.get(0))
            .unwrap();
        assert_eq!(d, 24.0);
        assert_eq!(one(&conn, "SELECT vec_norm('[3, 4]')").unwrap(), 5.0);
        let l2 = one(&conn, "SELECT vec_distance_l2('[0,0]', '[3,4]')").unwrap();
        assert!((l2 - 5.0).abs() < 1e-9);
        let c = one(&conn, "SELECT vec_distance_cosine('[1,0]', '[0,2]')").unwrap();
        assert!((c - 1.0).abs() < 1e-9);
        let c = one(&conn, "SELECT vec_distance_cosine('[1,1]', '[2,2]')").unwrap();
        assert!(c.abs() < 1e-6);

        let err = one(&conn, "SELECT vec_dot('[1,2,3]', '[1,2]')").unwrap_err();
        assert!(err.to_string().contains("length mismatch: 3 vs 2"), "{err}");
        let err = one(&conn, "SELECT vec_norm(x'000000')").unwrap_err();
        assert!(err.to_string().contains("not a whole number"), "{err}");
        let err = one(&conn, "SELECT vec_norm(42)").unwrap_err();
        assert!(err.to_string().contains("must be a vector"), "{err}");
        let err = one(&conn, "SELECT vec_norm('[1, \"x\"]')").unwrap_err();
        assert!(err.to_string().contains("JSON array"), "{err}");
        let err = one(&conn, "SELECT vec_distance_cosine('[0,0]', '[1,1]')").unwrap_err();
        assert!(err.to_string().contains("zero vector"), "{err}");
        let err = one(&conn, "SELECT vec_norm('[]')").unwrap_err();
        assert!(err.to_string().contains("empty vector"), "{err}");
    }
}
