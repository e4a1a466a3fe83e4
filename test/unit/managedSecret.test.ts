import { ourSecret } from "../../src/domain/managedSecret";
import { secretNameFor } from "../../src/domain/site";
import { SECRET_CONTENT_TYPE, encodeSiteTags } from "../../src/domain/tags";

const site = {
  site: "acme.creatio.com",
  appId: "11111111-1111-4111-8111-111111111111",
  appObjectId: "22222222-2222-4222-8222-222222222222",
  keyId: "33333333-3333-4333-8333-333333333333",
  creatioCredential: "creatio-api-acme",
  mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b",
};
const name = secretNameFor(site.site);

describe("ourSecret: is this Key Vault secret a managed site's?", () => {
  it("not ours without our contentType, whatever the tags", () => {
    expect(ourSecret({ name, contentType: "text/plain", tags: encodeSiteTags(site) })).toBeUndefined();
  });

  it("a managed site: host and tags, no problem", () => {
    expect(ourSecret({ name, contentType: SECRET_CONTENT_TYPE, tags: encodeSiteTags(site) })).toEqual({ host: site.site, tags: expect.objectContaining({ appId: site.appId }), problem: undefined });
  });

  it("tags that do not decode: the host from the name and the codec's problem", () => {
    const ours = ourSecret({ name, contentType: SECRET_CONTENT_TYPE, tags: { site: site.site } });
    expect(ours?.host).toBe(site.site);
    expect(ours?.tags).toBeUndefined();
    expect(ours?.problem).toMatch(/appId/);
  });

  it("a site tag that does not match the name, or cannot be a name, is a problem; the tags are still read", () => {
    for (const other of ["other.creatio.com", "Acme.Creatio.com"]) {
      const ours = ourSecret({ name, contentType: SECRET_CONTENT_TYPE, tags: encodeSiteTags({ ...site, site: other }) });
      expect(ours).toEqual({ host: other, tags: expect.objectContaining({ site: other }), problem: "Its site tag does not match its name." });
    }
  });
});
