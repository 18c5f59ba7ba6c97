// A private CA and server certificates made in the test with the openssl CLI (EC P-256: quick to make), for
// control planes serving https/wss, and two clients that trust only a given CA: an https GET and a bare TLS
// handshake that reports the certificate the server presented. Files land in a temp dir the test removes.
// Imports node:child_process, node:crypto, node:fs, node:https, node:tls and test/helpers/temp.
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { get } from "node:https";
import { join } from "node:path";
import { connect } from "node:tls";
import { promisify } from "node:util";
import { tempDir } from "./temp.ts";

const run = promisify(execFile);

export interface TestCa {
  name: string;
  certFile: string;
  keyFile: string;
  pem: string;
  dir: string;
}

export interface TestServerCert {
  certFile: string;
  keyFile: string;
  /** As X509Certificate reports them (serial upper-case hex, fingerprint colon-separated), for comparisons. */
  serial: string;
  fingerprint256: string;
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/** A self-signed CA certificate and key, valid for a day. */
export async function makeCa(t: { teardown(fn: () => void): void }, name = "test-ca"): Promise<TestCa> {
  const dir = tempDir(t, "ee-tls-");
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  await run("openssl", [
    "req",
    "-x509",
    ...EC,
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "1",
    "-subj",
    `/CN=${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  return { name, certFile, keyFile, pem: readFileSync(certFile, "utf8"), dir };
}

/**
 * A server certificate signed by `ca` for 127.0.0.1 and localhost (or `opts.san`), with `serial` (distinct per
 * certificate, so a client can tell which one a server presents). Written to `out` (default: files in the CA's
 * dir named by serial). `opts.clientAuth` lets it serve as a client certificate too (mutual TLS).
 */
export async function makeServerCert(
  ca: TestCa,
  serial: number,
  out: { certFile: string; keyFile: string } = {
    certFile: join(ca.dir, `server-${serial}.pem`),
    keyFile: join(ca.dir, `server-${serial}.key`),
  },
  opts: { san?: string; clientAuth?: boolean } = {},
): Promise<TestServerCert> {
  const csr = join(ca.dir, `server-${serial}.csr`);
  const ext = join(ca.dir, `server-${serial}.ext`);
  const usage = opts.clientAuth ? "serverAuth,clientAuth" : "serverAuth";
  writeFileSync(
    ext,
    `subjectAltName=${opts.san ?? "IP:127.0.0.1,DNS:localhost"}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=${usage}\n`,
  );
  await run("openssl", ["req", ...EC, "-keyout", out.keyFile, "-out", csr, "-subj", "/CN=localhost"]);
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca.certFile,
    "-CAkey",
    ca.keyFile,
    "-set_serial",
    String(serial),
    "-days",
    "1",
    "-extfile",
    ext,
    "-out",
    out.certFile,
  ]);
  const cert = new X509Certificate(readFileSync(out.certFile));
  return { ...out, serial: cert.serialNumber, fingerprint256: cert.fingerprint256 };
}

/** GET over https trusting only `ca`: the status. */
export function httpsStatus(url: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, { ca }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).once("error", reject);
  });
}

/** A new TLS connection to 127.0.0.1:port trusting only `ca`: the fingerprint of the certificate presented. */
export function presentedFingerprint(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, ca }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      resolve(fingerprint);
    });
    socket.once("error", reject);
  });
}
