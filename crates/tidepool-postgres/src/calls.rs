//! The client's calls that run a statement, on [`PgConnection`] itself:
//! each is the client's own, and notes an error that ends the session (see
//! [`PgConnection::is_closed`]). Method calls on a connection (or a pooled
//! guard) find these before the client's, through `Deref`.

use tokio_postgres::types::{BorrowToSql, ToSql, Type};
use tokio_postgres::{Error, Row, RowStream, SimpleQueryMessage, Statement, ToStatement};

use crate::PgConnection;

impl PgConnection {
    /// [`Client::prepare`](tokio_postgres::Client::prepare), watched.
    ///
    /// # Errors
    /// The driver's.
    pub async fn prepare(&self, query: &str) -> Result<Statement, Error> {
        self.watch(self.client().prepare(query).await)
    }

    /// [`Client::prepare_typed`](tokio_postgres::Client::prepare_typed),
    /// watched.
    ///
    /// # Errors
    /// The driver's.
    pub async fn prepare_typed(
        &self,
        query: &str,
        parameter_types: &[Type],
    ) -> Result<Statement, Error> {
        self.watch(self.client().prepare_typed(query, parameter_types).await)
    }

    /// [`Client::query`](tokio_postgres::Client::query), watched.
    ///
    /// # Errors
    /// The driver's.
    pub async fn query<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.watch(self.client().query(statement, params).await)
    }

    /// [`Client::query_one`](tokio_postgres::Client::query_one), watched.
    ///
    /// # Errors
    /// The driver's (also when there is not exactly one row).
    pub async fn query_one<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.watch(self.client().query_one(statement, params).await)
    }

    /// [`Client::query_opt`](tokio_postgres::Client::query_opt), watched.
    ///
    /// # Errors
    /// The driver's (also when there is more than one row).
    pub async fn query_opt<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.watch(self.client().query_opt(statement, params).await)
    }

    /// [`Client::query_raw`](tokio_postgres::Client::query_raw), watched
    /// until the rows start (errors while streaming them are the stream's).
    ///
    /// # Errors
    /// The driver's.
    pub async fn query_raw<T, P, I>(&self, statement: &T, params: I) -> Result<RowStream, Error>
    where
        T: ?Sized + ToStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
        I::IntoIter: ExactSizeIterator,
    {
        self.watch(self.client().query_raw(statement, params).await)
    }

    /// [`Client::execute`](tokio_postgres::Client::execute), watched.
    ///
    /// # Errors
    /// The driver's.
    pub async fn execute<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.watch(self.client().execute(statement, params).await)
    }

    /// [`Client::execute_raw`](tokio_postgres::Client::execute_raw), watched.
    ///
    /// # Errors
    /// The driver's.
    pub async fn execute_raw<T, P, I>(&self, statement: &T, params: I) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
        I::IntoIter: ExactSizeIterator,
    {
        self.watch(self.client().execute_raw(statement, params).await)
    }

    /// [`Client::simple_query`](tokio_postgres::Client::simple_query),
    /// watched.
    ///
    /// # Errors
    /// The driver's.
    pub async fn simple_query(&self, query: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        self.watch(self.client().simple_query(query).await)
    }

    /// [`Client::batch_execute`](tokio_postgres::Client::batch_execute),
    /// watched.
    ///
    /// # Errors
    /// The driver's.
    pub async fn batch_execute(&self, query: &str) -> Result<(), Error> {
        self.watch(self.client().batch_execute(query).await)
    }
}
