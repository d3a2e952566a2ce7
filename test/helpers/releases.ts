// A config of two services (frontend v1/v2, cart v4/v5, sticky on x-user) and one release, checkout-2.3, over them.

/** Two services and one release over them. */
export function releaseConfig(urls: readonly string[], release: string, top = ''): string {
  return `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: silent }
drainTimeout: 1s
${top}
services:
  - name: frontend
    match: { pathPrefix: /front }
    versions:
      - { name: v1, upstream: "${urls[0]}" }
      - { name: v2, upstream: "${urls[1]}", labels: { commit: 3f2a9c1 } }
    split: { weights: { v1: 100, v2: 0 }, sticky: { header: x-user } }
  - name: cart
    match: { pathPrefix: /cart }
    versions:
      - { name: v4, upstream: "${urls[2]}" }
      - { name: v5, upstream: "${urls[3]}", labels: { commit: 3f2a9c1 } }
    split: { weights: { v4: 100, v5: 0 }, sticky: { header: x-user } }
releases:
  - name: checkout-2.3
    services: { frontend: v2, cart: v5 }
${release}`;
}

