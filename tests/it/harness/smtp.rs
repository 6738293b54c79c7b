//! A local SMTP sink for the mail tests: accepts every message (or refuses the first few with a
//! temporary error) and keeps them.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Clone, Default)]
pub struct SmtpSink {
    pub port: u16,
    pub mails: Arc<Mutex<Vec<String>>>,
    /// Messages still to refuse with `451`.
    pub refuse: Arc<Mutex<u32>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = SmtpSink {
            port: listener.local_addr().unwrap().port(),
            ..SmtpSink::default()
        };
        let served = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = served.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 sink ESMTP\r\n").await.ok();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250-sink\r\n250 8BITMIME\r\n",
                            "DATA" => {
                                write.write_all(b"354 go ahead\r\n").await.ok();
                                let mut message = String::new();
                                while let Ok(Some(l)) = lines.next_line().await {
                                    if l == "." {
                                        break;
                                    }
                                    message.push_str(&l);
                                    message.push('\n');
                                }
                                let refuse = {
                                    let mut r = sink.refuse.lock().unwrap();
                                    let now = *r > 0;
                                    *r = r.saturating_sub(1);
                                    now
                                };
                                if refuse {
                                    b"451 try again later\r\n"
                                } else {
                                    sink.mails.lock().unwrap().push(message);
                                    b"250 queued\r\n"
                                }
                            }
                            "QUIT" => {
                                write.write_all(b"221 bye\r\n").await.ok();
                                return;
                            }
                            _ => b"250 ok\r\n",
                        };
                        if write.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        sink
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn count(&self) -> usize {
        self.mails.lock().unwrap().len()
    }

    /// The body of mail `n`, quoted-printable soft breaks and `=3D` undone.
    pub fn text(&self, n: usize) -> String {
        let raw = self.mails.lock().unwrap()[n].clone();
        raw.replace("=\n", "").replace("=3D", "=")
    }

    /// The first `https?://…token=…` link in mail `n`.
    pub fn link(&self, n: usize) -> String {
        let text = self.text(n);
        let start = text.find("http").expect("a link");
        text[start..].split_whitespace().next().unwrap().to_owned()
    }
}
