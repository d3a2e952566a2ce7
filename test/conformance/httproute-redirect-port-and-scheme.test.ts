// Port of Gateway API conformance/tests/httproute-redirect-port-and-scheme.go
// (and .yaml): the Location's port when a requestRedirect names a scheme, a
// port, both or neither, on an HTTP listener on port 80, one on 8080 and an
// HTTPS listener on 443.
//
// Each Gateway listener is a veer of its own here (the three routes share
// their paths) on a free port, so where the suite expects "80 or none" (or
// "443 or none", or 8080) because that is the listener's port, the Location
// must carry veer's listener port instead; an explicit or scheme-implied
// port is checked as in the suite. The HTTPS listener's certificate is made
// by openssl for example.org, as the suite's tls-validity-checks-certificate.

import t from 'tap';
import { makePki, makeServerCert } from '../helpers/certs.ts';
import { expectResponses, startGateway } from '../helpers/conformance.ts';

const redirect = (path: string, filter: string) => `      - matches: [{ path: { type: PathPrefix, value: ${path} } }]\n        filters: [{ requestRedirect: { ${filter} } }]\n`;

t.test('http-listener-on-80', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'http-route-for-listener-on-port-80',
      rules: [
        redirect('/scheme-nil-and-port-nil', 'hostname: example.org'),
        redirect('/scheme-nil-and-port-80', 'port: 80, hostname: example.org'),
        redirect('/scheme-nil-and-port-8080', 'port: 8080, hostname: example.org'),
        redirect('/scheme-https-and-port-nil', 'scheme: https, hostname: example.org'),
        redirect('/scheme-https-and-port-443', 'scheme: https, port: 443, hostname: example.org'),
        redirect('/scheme-https-and-port-8443', 'scheme: https, port: 8443, hostname: example.org'),
      ].join(''),
    },
  ]);
  await expectResponses(t, gw, [
    { request: { path: '/scheme-nil-and-port-nil' }, status: 302, redirect: { scheme: 'http', host: 'example.org', port: String(gw.port) } },
    { request: { path: '/scheme-nil-and-port-80' }, status: 302, redirect: { scheme: 'http', host: 'example.org' } },
    { request: { path: '/scheme-nil-and-port-8080' }, status: 302, redirect: { scheme: 'http', port: '8080', host: 'example.org' } },
    { request: { path: '/scheme-https-and-port-nil' }, status: 302, redirect: { scheme: 'https', host: 'example.org' } },
    { request: { path: '/scheme-https-and-port-443' }, status: 302, redirect: { scheme: 'https', host: 'example.org' } },
    { request: { path: '/scheme-https-and-port-8443' }, status: 302, redirect: { scheme: 'https', port: '8443', host: 'example.org' } },
  ]);
});

t.test('http-listener-on-8080', async (t) => {
  const gw = await startGateway(t, [
    {
      name: 'http-route-for-listener-on-port-8080',
      rules: [
        redirect('/scheme-nil-and-port-nil', 'hostname: example.org'),
        redirect('/scheme-nil-and-port-80', 'port: 80, hostname: example.org'),
        redirect('/scheme-https-and-port-nil', 'scheme: https, hostname: example.org'),
      ].join(''),
    },
  ]);
  await expectResponses(t, gw, [
    { request: { path: '/scheme-nil-and-port-nil' }, status: 302, redirect: { scheme: 'http', port: String(gw.port), host: 'example.org' } },
    { request: { path: '/scheme-nil-and-port-80' }, status: 302, redirect: { scheme: 'http', host: 'example.org' } },
    { request: { path: '/scheme-https-and-port-nil' }, status: 302, redirect: { scheme: 'https', host: 'example.org' } },
  ]);
});

t.test('https-listener-on-443', async (t) => {
  const pki = makePki();
  t.teardown(() => pki.destroy());
  const cert = makeServerCert(pki, 'example', ['example.org']);
  const gw = await startGateway(
    t,
    [
      {
        name: 'http-route-for-listener-on-port-443',
        rules: [
          redirect('/scheme-nil-and-port-nil', 'hostname: example.org'),
          redirect('/scheme-nil-and-port-443', 'port: 443, hostname: example.org'),
          redirect('/scheme-nil-and-port-8443', 'port: 8443, hostname: example.org'),
          redirect('/scheme-http-and-port-nil', 'scheme: http, hostname: example.org'),
          redirect('/scheme-http-and-port-80', 'scheme: http, port: 80, hostname: example.org'),
          redirect('/scheme-http-and-port-8080', 'scheme: http, port: 8080, hostname: example.org'),
        ].join(''),
      },
    ],
    `tls: { listen: 127.0.0.1:0, certificates: [{ cert: ${cert.cert}, key: ${cert.key} }] }\n`,
    pki.ca,
  );
  const on443 = (path: string) => ({ host: 'example.org', path, https: true });
  await expectResponses(t, gw, [
    { request: on443('/scheme-nil-and-port-nil'), status: 302, redirect: { scheme: 'https', host: 'example.org', port: String(gw.tlsPort) } },
    { request: on443('/scheme-nil-and-port-443'), status: 302, redirect: { scheme: 'https', host: 'example.org' } },
    { request: on443('/scheme-nil-and-port-8443'), status: 302, redirect: { scheme: 'https', port: '8443', host: 'example.org' } },
    { request: on443('/scheme-http-and-port-nil'), status: 302, redirect: { scheme: 'http', host: 'example.org' } },
    { request: on443('/scheme-http-and-port-80'), status: 302, redirect: { scheme: 'http', host: 'example.org' } },
    { request: on443('/scheme-http-and-port-8080'), status: 302, redirect: { scheme: 'http', port: '8080', host: 'example.org' } },
  ]);
});
