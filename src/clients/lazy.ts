/**
 * A client object that is built on its first use rather than when it is asked for. The HTTP
 * functions and activities take their clients as default dependencies when they start, even on a
 * path that never calls them (a request refused by validation); with this, the SDK behind the
 * client (the Key Vault and Graph SDKs, @azure/identity with MSAL) is only loaded, and the
 * credential only made, when a method is first called (issue 12, cold load).
 */
export function lazyClient<T extends object>(create: () => T): T {
  let client: T | undefined;
  const real = (): T => (client ??= create());
  return new Proxy({} as T, {
    get(_target, property) {
      const target = real();
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
    has: (_target, property) => Reflect.has(real(), property),
  });
}
