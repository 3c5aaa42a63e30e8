//! A read store behind `&`, `Box` or `Arc` is one too, forwarding every method, so
//! `Arc<dyn Store>` offers `documents::<P>()` like the store itself.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::read::store::{
    DeadLetter, DocumentRow, DocumentTable, GenerationState, ListQuery, ReadStore, ReadTx,
};

macro_rules! forward {
    ($($wrapper:ty),+) => {$(
        #[async_trait]
        impl<S: ReadStore + ?Sized> ReadStore for $wrapper {
            async fn generations(&self, projection: &str) -> Result<Vec<GenerationState>, StoreError> {
                (**self).generations(projection).await
            }

            async fn create_generation(
                &self,
                table: &DocumentTable,
                version: &str,
            ) -> Result<GenerationState, StoreError> {
                (**self).create_generation(table, version).await
            }

            async fn promote(&self, table: &DocumentTable) -> Result<(), StoreError> {
                (**self).promote(table).await
            }

            async fn begin(&self) -> Result<Box<dyn ReadTx + '_>, StoreError> {
                (**self).begin().await
            }

            async fn get_document(
                &self,
                table: &DocumentTable,
                key: &str,
            ) -> Result<Option<DocumentRow>, StoreError> {
                (**self).get_document(table, key).await
            }

            async fn list_documents(
                &self,
                table: &DocumentTable,
                query: &ListQuery,
            ) -> Result<Vec<DocumentRow>, StoreError> {
                (**self).list_documents(table, query).await
            }

            async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, StoreError> {
                (**self).dead_letters(projection).await
            }

            async fn acquire_lease(
                &self,
                projection: &str,
                holder: &str,
                ttl: Duration,
            ) -> Result<String, StoreError> {
                (**self).acquire_lease(projection, holder, ttl).await
            }

            async fn lease_holder(&self, projection: &str) -> Result<Option<String>, StoreError> {
                (**self).lease_holder(projection).await
            }

            async fn release_lease(&self, projection: &str, holder: &str) -> Result<(), StoreError> {
                (**self).release_lease(projection, holder).await
            }

            fn append_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
                (**self).append_signal()
            }

            fn sql_table_name(&self, name: &str) -> Option<String> {
                (**self).sql_table_name(name)
            }

            async fn query_sql(
                &self,
                sql: &str,
                params: &[crate::sql::SqlValue],
            ) -> Result<crate::sql::SqlRows, StoreError> {
                (**self).query_sql(sql, params).await
            }
        }
    )+};
}

forward!(&S, Box<S>, Arc<S>);
