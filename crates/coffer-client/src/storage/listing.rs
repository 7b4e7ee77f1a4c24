//! Listings, read as a stream: at most [`MAX_LISTING_ENTRIES`] entries, within a deadline
//! that grows with each entry (limits.rs). OpenDAL's `list` would collect every page of a
//! listing that never ends.

use futures_util::StreamExt;
use opendal::ErrorKind;

use super::errors::{http_status, listing_too_slow, too_many_entries};
use super::limits::{Deadline, MAX_LISTING_ENTRIES};
use super::Backend;
use crate::error::ClientError;

/// Paths deleted in one batch while a folder is removed.
const DELETE_BATCH: usize = 1000;

/// The entries directly in one folder, not the folder itself; none when it does not exist.
pub(super) struct Listing {
    backend: Backend,
    /// `None` once the listing ended, or when there was none.
    lister: Option<opendal::Lister>,
    dir: String,
    action: &'static str,
    received: usize,
    deadline: Deadline,
}

impl Backend {
    pub(super) async fn listing(
        &self,
        dir: &str,
        action: &'static str,
    ) -> Result<Listing, ClientError> {
        let mut deadline = Deadline::new(self.deadline);
        let lister = match deadline.wait(self.op.lister(dir)).await {
            None => {
                return Err(listing_too_slow(
                    action,
                    dir,
                    0,
                    deadline.waited(),
                    self.deadline,
                ))
            }
            Some(Ok(l)) => Some(l),
            Some(Err(e)) => {
                self.listing_failed(action, e)?;
                None
            }
        };
        Ok(Listing {
            backend: self.clone(),
            lister,
            dir: dir.to_string(),
            action,
            received: 0,
            deadline,
        })
    }

    /// What a failed listing means: a missing folder is an empty one.
    fn listing_failed(&self, action: &'static str, e: opendal::Error) -> Result<(), ClientError> {
        // An object store lists a missing prefix as empty: its "not found" can only mean
        // that the bucket or container itself is missing.
        if self.object_store
            && (e.kind() == ErrorKind::NotFound || http_status(&e.to_string()) == Some(404))
        {
            return Err(ClientError::StorageMissing(self.location.clone()));
        }
        if e.kind() == ErrorKind::NotFound {
            return Ok(());
        }
        Err(self.shared.err(action, e))
    }

    /// Deletes folder `dir` and what is in it, without following a listing that never
    /// ends: the provider's own recursive delete where it has one, else a listing like
    /// any other (OpenDAL would simulate a recursive delete with an unbounded listing).
    pub(super) async fn remove_folder(
        &self,
        dir: &str,
        action: &'static str,
    ) -> Result<(), ClientError> {
        let err = |e| self.shared.err(action, e);
        match self.folders {
            FolderDelete::Recursive => self.op.delete_with(dir).recursive(true).await,
            // WebDAV's DELETE of a collection removes all that it holds (RFC 4918, 9.6.1).
            FolderDelete::Collection => self.op.delete(dir).await,
            FolderDelete::Listed => {
                let mut listing = self.listing(dir, action).await?;
                let mut batch = Vec::new();
                while let Some(entry) = listing.next().await? {
                    batch.push(entry.path().to_string());
                    if batch.len() == DELETE_BATCH {
                        self.op.delete_iter(batch.drain(..)).await.map_err(err)?;
                    }
                }
                self.op.delete_iter(batch).await.map_err(err)?;
                self.op.delete(dir).await
            }
        }
        .map_err(err)
    }
}

/// How a provider deletes a folder with what is in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FolderDelete {
    /// OpenDAL's recursive delete is the provider's own (local folders, Google Drive).
    Recursive,
    /// Deleting the folder deletes what it holds (WebDAV).
    Collection,
    /// Each object is deleted, as listed (object stores and other drives, whose
    /// listings come in pages).
    Listed,
}

impl Listing {
    /// The next entry; `None` at the end.
    pub(super) async fn next(&mut self) -> Result<Option<opendal::Entry>, ClientError> {
        loop {
            let Some(lister) = self.lister.as_mut() else {
                return Ok(None);
            };
            let Some(got) = self.deadline.wait(lister.next()).await else {
                self.lister = None;
                return Err(listing_too_slow(
                    self.action,
                    &self.dir,
                    self.received,
                    self.deadline.waited(),
                    self.deadline.base(),
                ));
            };
            match got {
                None => {
                    self.lister = None;
                    return Ok(None);
                }
                Some(Err(e)) => {
                    self.lister = None;
                    self.backend.listing_failed(self.action, e)?;
                    return Ok(None);
                }
                // The folder itself, which some providers list: neither counted nor given
                // more time.
                Some(Ok(entry)) if entry.path() == self.dir => {}
                Some(Ok(entry)) => {
                    self.received += 1;
                    if self.received > MAX_LISTING_ENTRIES {
                        self.lister = None;
                        return Err(too_many_entries(self.action, &self.dir));
                    }
                    self.deadline.received_entry();
                    return Ok(Some(entry));
                }
            }
        }
    }
}
