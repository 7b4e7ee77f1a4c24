//! The HTTP transport of every provider: OpenDAL's reqwest transport, with a cap on the
//! answers that OpenDAL reads whole.
//!
//! OpenDAL reads a listing page, or the body of an error, into memory before parsing it,
//! so a provider could send one that never ends. A listing page that passes
//! [`MAX_ANSWER_BYTES`] fails; the body of an error (any status but 2xx) is cut short at
//! [`MAX_ERROR_ANSWER_BYTES`] instead, so that its status still says what went wrong.
//! Downloads are not capped here: they are answers to requests for a range, which Coffer
//! streams and counts itself (`download.rs`).

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};
use opendal::{Buffer, Error, ErrorKind, HttpBody, HttpTransport};
use opendal_http_transport_reqwest::ReqwestTransport;

use super::limits::{MAX_ANSWER_BYTES, MAX_ERROR_ANSWER_BYTES};

/// What a cut-off answer says, in OpenDAL's error and then in Coffer's.
pub(super) const ANSWER_TOO_LONG: &str = "the provider's answer is longer than 16 MiB, more \
    than any real answer; stopped reading it (the provider is broken or hostile)";

#[derive(Default)]
pub(super) struct BoundedTransport {
    inner: ReqwestTransport,
}

impl HttpTransport for BoundedTransport {
    async fn fetch(&self, req: http::Request<Buffer>) -> opendal::Result<http::Response<HttpBody>> {
        let ranged = req.headers().contains_key(http::header::RANGE);
        let resp = self.inner.fetch(req).await?;
        let success = resp.status().is_success();
        if ranged && success {
            return Ok(resp);
        }
        let (left, over) = if success {
            (MAX_ANSWER_BYTES, OverCap::Fail)
        } else {
            (MAX_ERROR_ANSWER_BYTES, OverCap::Cut)
        };
        let (parts, body) = resp.into_parts();
        let body = match over {
            OverCap::Fail => body.map_inner(|inner| {
                Box::new(Capped {
                    inner,
                    left,
                    over,
                    done: false,
                })
            }),
            // A body cut short must not be checked against the length its headers
            // announce: taken out of its `HttpBody`, it goes into one of no set length.
            OverCap::Cut => {
                let mut taken = None;
                let _ = body.map_inner(|inner| {
                    taken = Some(inner);
                    Box::new(futures_util::stream::empty())
                });
                match taken {
                    Some(inner) => HttpBody::new(
                        Capped {
                            inner,
                            left,
                            over,
                            done: false,
                        },
                        None,
                    ),
                    None => HttpBody::new(futures_util::stream::empty(), None),
                }
            }
        };
        Ok(http::Response::from_parts(parts, body))
    }
}

type Inner = Box<dyn Stream<Item = opendal::Result<Buffer>> + Send + Sync + Unpin + 'static>;

/// What a capped body does once it passes its cap.
#[derive(Debug, Clone, Copy)]
enum OverCap {
    /// Ends in an error: the answer is of no use cut short.
    Fail,
    /// Ends there, quietly: the start of an error message says enough.
    Cut,
}

/// A body that ends once it passes `left` bytes, as `over` says.
struct Capped {
    inner: Inner,
    left: u64,
    over: OverCap,
    done: bool,
}

impl Stream for Capped {
    type Item = opendal::Result<Buffer>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(buf))) if buf.len() as u64 > self.left => {
                self.done = true;
                match self.over {
                    // Permanent: retrying would only fetch the same again.
                    OverCap::Fail => Poll::Ready(Some(Err(Error::new(
                        ErrorKind::Unexpected,
                        ANSWER_TOO_LONG,
                    )))),
                    OverCap::Cut => {
                        let keep = self.left as usize;
                        self.left = 0;
                        Poll::Ready(Some(Ok(buf.slice(..keep))))
                    }
                }
            }
            Poll::Ready(Some(Ok(buf))) => {
                self.left -= buf.len() as u64;
                Poll::Ready(Some(Ok(buf)))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn capped(pieces: Vec<usize>) -> Vec<Result<usize, String>> {
        capped_as(pieces, MAX_ANSWER_BYTES, OverCap::Fail).await
    }

    async fn capped_as(pieces: Vec<usize>, left: u64, over: OverCap) -> Vec<Result<usize, String>> {
        let inner = futures_util::stream::iter(
            pieces
                .into_iter()
                .map(|n| Ok(Buffer::from(vec![0u8; n])))
                .collect::<Vec<_>>(),
        );
        let body = Capped {
            inner: Box::new(inner),
            left,
            over,
            done: false,
        };
        body.map(|r| r.map(|b| b.len()).map_err(|e| e.to_string()))
            .collect()
            .await
    }

    #[test]
    fn the_message_gives_the_cap() {
        let mib = format!("{} MiB", MAX_ANSWER_BYTES >> 20);
        assert!(ANSWER_TOO_LONG.contains(&mib), "{ANSWER_TOO_LONG}");
    }

    #[tokio::test]
    async fn answers_are_capped() {
        let cap = MAX_ANSWER_BYTES as usize;
        assert_eq!(capped(vec![cap - 1, 1]).await, vec![Ok(cap - 1), Ok(1)]);
        let over = capped(vec![cap - 1, 2, 5]).await;
        assert_eq!(over.len(), 2, "nothing is read past the cap");
        let err = over[1].as_ref().unwrap_err();
        assert!(err.contains("longer than 16 MiB"), "{err}");
    }

    #[tokio::test]
    async fn error_answers_are_cut_short() {
        let cap = MAX_ERROR_ANSWER_BYTES as usize;
        let cut = capped_as(vec![cap - 1, 5, 7], cap as u64, OverCap::Cut).await;
        assert_eq!(cut, vec![Ok(cap - 1), Ok(1)], "cut at the cap, then ended");
        let whole = capped_as(vec![10, 20], cap as u64, OverCap::Cut).await;
        assert_eq!(whole, vec![Ok(10), Ok(20)]);
    }
}
