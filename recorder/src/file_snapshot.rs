//! The set of Parquet files one query reads, fixed before the query plans. DataFusion lists a
//! listing table's directory when it scans; without a fixed set, a file the roller publishes
//! between the query's read of the journal and that scan would be read as well as the journal
//! rows it came from, and the query would show those rows twice. [`SnapshotStore`] is a
//! read-only object store over the local file system whose listings show only the snapshot.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::path::Path as StorePath;
use datafusion::object_store::{
    self, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use futures::stream::{BoxStream, StreamExt};

/// A read-only local-file object store that lists only the files of a snapshot.
#[derive(Debug)]
pub(crate) struct SnapshotStore {
    inner: Arc<LocalFileSystem>,
    /// Object-store locations of the files the query may list.
    files: Arc<HashSet<StorePath>>,
}

impl SnapshotStore {
    /// A store whose listings show exactly `files` (object-store locations).
    pub(crate) fn new(files: HashSet<StorePath>) -> SnapshotStore {
        SnapshotStore {
            inner: Arc::new(LocalFileSystem::new()),
            files: Arc::new(files),
        }
    }
}

impl fmt::Display for SnapshotStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SnapshotStore({} files)", self.files.len())
    }
}

fn read_only(operation: &str) -> object_store::Error {
    object_store::Error::NotSupported {
        source: format!("{operation}: the audit trail is read-only in queries").into(),
    }
}

#[async_trait]
impl ObjectStore for SnapshotStore {
    async fn put_opts(
        &self,
        _location: &StorePath,
        _payload: PutPayload,
        _opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        Err(read_only("put"))
    }

    async fn put_multipart_opts(
        &self,
        _location: &StorePath,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(read_only("put"))
    }

    async fn get_opts(
        &self,
        location: &StorePath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &StorePath,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<StorePath>>,
    ) -> BoxStream<'static, object_store::Result<StorePath>> {
        locations.map(|_| Err(read_only("delete"))).boxed()
    }

    fn list(
        &self,
        prefix: Option<&StorePath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let files = Arc::clone(&self.files);
        self.inner
            .list(prefix)
            .filter(move |item| {
                let keep = match item {
                    Ok(meta) => files.contains(&meta.location),
                    Err(_) => true,
                };
                futures::future::ready(keep)
            })
            .boxed()
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&StorePath>,
    ) -> object_store::Result<ListResult> {
        let mut listed = self.inner.list_with_delimiter(prefix).await?;
        listed
            .objects
            .retain(|meta| self.files.contains(&meta.location));
        Ok(listed)
    }

    async fn copy_opts(
        &self,
        _from: &StorePath,
        _to: &StorePath,
        _options: CopyOptions,
    ) -> object_store::Result<()> {
        Err(read_only("copy"))
    }
}
