package io.anneal.it;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * Certificates for TLS tests, made with the JDK's keytool: a certificate authority, and certificates it
 * signs for 127.0.0.1 and localhost, written as the PEM files the service reads.
 */
final class TestCerts {
  private static final char[] PASS = "changeit".toCharArray();
  private final Path dir;
  private final String name;

  /** A new CA named {@code name} in {@code dir}. */
  TestCerts(Path dir, String name) throws Exception {
    this.dir = Files.createDirectories(dir);
    this.name = name;
    keytool("-genkeypair", "-alias", "ca", "-keyalg", "RSA", "-keysize", "2048", "-dname", "CN=" + name, "-ext", "bc:c",
        "-validity", "2", "-keystore", store(name).toString());
    keytool("-exportcert", "-rfc", "-alias", "ca", "-keystore", store(name).toString(), "-file", caPem().toString());
  }

  /** The CA's certificate (PEM). */
  Path caPem() {
    return dir.resolve(name + "-ca.pem");
  }

  /** A certificate for {@code who} signed by this CA: {cert chain PEM, private key PEM}. */
  Path[] issue(String who) throws Exception {
    Path ks = store(name + "-" + who);
    keytool("-genkeypair", "-alias", "k", "-keyalg", "RSA", "-keysize", "2048", "-dname", "CN=" + who, "-validity", "2",
        "-keystore", ks.toString());
    Path csr = dir.resolve(name + "-" + who + ".csr");
    Path crt = dir.resolve(name + "-" + who + ".crt");
    keytool("-certreq", "-alias", "k", "-keystore", ks.toString(), "-file", csr.toString());
    keytool("-gencert", "-alias", "ca", "-keystore", store(name).toString(), "-infile", csr.toString(), "-outfile",
        crt.toString(), "-rfc", "-validity", "2", "-ext", "san=ip:127.0.0.1,dns:localhost");
    Path chain = dir.resolve(name + "-" + who + "-chain.pem");
    Files.writeString(chain, Files.readString(crt) + Files.readString(caPem()));
    KeyStore k = KeyStore.getInstance("PKCS12");
    try (InputStream in = Files.newInputStream(ks)) {
      k.load(in, PASS);
    }
    PrivateKey key = (PrivateKey) k.getKey("k", PASS);
    Path keyPem = dir.resolve(name + "-" + who + "-key.pem");
    Files.writeString(keyPem, "-----BEGIN PRIVATE KEY-----\n" + Base64.getMimeEncoder(64, "\n".getBytes()).encodeToString(
        key.getEncoded()) + "\n-----END PRIVATE KEY-----\n");
    return new Path[] {chain, keyPem};
  }

  /** A client context that trusts this CA only. */
  SSLContext clientContext() throws Exception {
    KeyStore trust = KeyStore.getInstance("PKCS12");
    trust.load(null, null);
    List<Certificate> cas = new ArrayList<>();
    try (InputStream in = Files.newInputStream(caPem())) {
      cas.addAll(CertificateFactory.getInstance("X.509").generateCertificates(in));
    }
    trust.setCertificateEntry("ca", (X509Certificate) cas.get(0));
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(trust);
    SSLContext ctx = SSLContext.getInstance("TLS");
    ctx.init(null, tmf.getTrustManagers(), null);
    return ctx;
  }

  private Path store(String n) {
    return dir.resolve(n + ".p12");
  }

  private static void keytool(String... args) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "keytool").toString()));
    cmd.addAll(List.of(args));
    cmd.addAll(List.of("-storetype", "PKCS12", "-storepass", new String(PASS), "-noprompt"));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) throw new IOException("keytool " + cmd + " failed: " + out);
  }
}
