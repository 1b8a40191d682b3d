//! SQL text shared by lookout's stores; it now lives in the `lookout-sql` crate and is
//! re-exported here until the cloud ledger (`lookout-cloud`) uses that crate directly.

pub use lookout_sql::numbered_placeholders;
