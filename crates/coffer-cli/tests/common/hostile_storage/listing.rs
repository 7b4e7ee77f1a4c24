//! The hostile S3 server's listings (ListObjectsV2) and its XML answers.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::thread;

use super::{lock, Listing, Request, Shared};

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub(super) fn respond(
    out: &mut impl Write,
    status: u16,
    code: &str,
    extra: &[(&str, String)],
) -> io::Result<()> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{code}</Message></Error>"
    );
    respond_with(out, status, code, extra, &body)
}

/// An S3 error answer whose message is one line of `len` letters.
pub(super) fn respond_huge(
    out: &mut impl Write,
    status: u16,
    code: &str,
    len: usize,
) -> io::Result<()> {
    let mut body =
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>");
    body.push_str(&"A".repeat(len));
    body.push_str("</Message></Error>");
    respond_with(out, status, code, &[], &body)
}

fn respond_with(
    out: &mut impl Write,
    status: u16,
    code: &str,
    extra: &[(&str, String)],
    body: &str,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {code}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body.as_bytes())?;
    out.flush()
}

const LIST_HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";

fn contents(key: &str, size: u64) -> String {
    format!(
        "<Contents><Key>{}</Key><LastModified>2020-01-01T00:00:00.000Z</LastModified>\
         <ETag>\"0\"</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>",
        xml_escape(key)
    )
}

/// A made-up backup's key named as newer than any real one, `n` making it unique.
fn future_made_up(prefix: &str, n: u64) -> String {
    format!("{prefix}20991231T235959999Z-{n:08x}.coffer")
}

/// A made-up backup's key, `n` making it unique.
fn made_up(prefix: &str, n: u64) -> String {
    format!("{prefix}20200101T000000000Z-{n:08x}.coffer")
}

pub(super) fn list(shared: &Shared, req: &Request, out: &mut impl Write) -> io::Result<()> {
    let prefix = req.query.get("prefix").cloned().unwrap_or_default();
    let token: u64 = req
        .query
        .get("continuation-token")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let listing = *lock(&shared.listing);
    lock(&shared.stats).list_pages += 1;
    match listing {
        Listing::Failing {
            status,
            message_len,
        } => respond_huge(out, status, "AccessDenied", message_len),
        Listing::Honest | Listing::Many { .. } => {
            let delimiter = req.query.get("delimiter").cloned().unwrap_or_default();
            let mut body = String::from(LIST_HEAD);
            body.push_str("<IsTruncated>false</IsTruncated>");
            let mut dirs = BTreeSet::new();
            let mut n = 0;
            for (key, obj) in lock(&shared.objects).iter() {
                let Some(rest) = key.strip_prefix(&prefix) else {
                    continue;
                };
                match rest.find(&delimiter) {
                    Some(i) if !delimiter.is_empty() => {
                        dirs.insert(format!("{prefix}{}", &rest[..i + delimiter.len()]));
                    }
                    _ => {
                        body.push_str(&contents(key, obj.listed_len()));
                        n += 1;
                    }
                }
            }
            if let Listing::Many { count } = listing {
                if prefix.ends_with("backups/") {
                    for n in 0..count as u64 {
                        body.push_str(&contents(&future_made_up(&prefix, n), 1000));
                    }
                    n += count as u64;
                }
            }
            for d in &dirs {
                body.push_str(&format!(
                    "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                    xml_escape(d)
                ));
            }
            body.push_str("</ListBucketResult>");
            lock(&shared.stats).listed_entries += n + dirs.len() as u64;
            send_xml(out, &body)
        }
        Listing::Endless { per_page, every } => {
            thread::sleep(every);
            let mut body = String::from(LIST_HEAD);
            body.push_str(&format!(
                "<IsTruncated>true</IsTruncated><NextContinuationToken>{}</NextContinuationToken>",
                token + 1
            ));
            let first = token * per_page as u64;
            for n in first..first + per_page as u64 {
                body.push_str(&contents(&made_up(&prefix, n), 1000));
            }
            body.push_str("</ListBucketResult>");
            lock(&shared.stats).listed_entries += per_page as u64;
            send_xml(out, &body)
        }
        Listing::EndlessBody => {
            out.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n",
            )?;
            chunk(
                out,
                format!("{LIST_HEAD}<IsTruncated>false</IsTruncated>").as_bytes(),
            )?;
            let mut n = 0u64;
            while !shared.stopped() {
                let mut piece = String::new();
                for _ in 0..256 {
                    piece.push_str(&contents(&made_up(&prefix, n), 1000));
                    n += 1;
                }
                chunk(out, piece.as_bytes())?;
                lock(&shared.stats).listed_entries += 256;
            }
            Ok(())
        }
    }
}

fn chunk(out: &mut impl Write, data: &[u8]) -> io::Result<()> {
    write!(out, "{:x}\r\n", data.len())?;
    out.write_all(data)?;
    out.write_all(b"\r\n")
}

fn send_xml(out: &mut impl Write, body: &str) -> io::Result<()> {
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    out.write_all(body.as_bytes())?;
    out.flush()
}
