// turnbrokerctl's output: what each object prints as, on one line.
#include "turnbroker/ctl/output.h"

#include <gtest/gtest.h>

#include <sstream>

namespace turnbroker::ctl {
namespace {

TEST(OutputTest, KeyValueLineQuotesEmptyValuesAndValuesWithSpaces) {
  json object = {{"a", "x"}, {"b", ""}, {"c", "two words"}, {"d", 7}, {"e", true}};
  EXPECT_EQ(KeyValueLine(object), "a=x b=\"\" c=\"two words\" d=7 e=true");
}

TEST(OutputTest, CredentialNeverShowsItsKey) {
  v1::Credential c;
  c.set_username("alice");
  c.set_realm("ims.example.org");
  c.set_key(std::string(16, '\x7f'));
  c.set_expires_at_ms(2000);
  c.set_issued_at_ms(1000);
  c.add_scopes("north");
  const json j = CredentialJson(c);
  EXPECT_FALSE(j.contains("key"));
  EXPECT_EQ(KeyValueLine(j),
            "username=alice realm=ims.example.org expires_at_ms=2000 issued_at_ms=1000 "
            "scopes=[\"north\"]");
}

TEST(OutputTest, RevokeEventNamesItsSelectorAndCount) {
  v1::Event e;
  e.set_revision(9);
  e.mutable_revoke()->mutable_selector()->set_issuer("pcscf-1");
  e.mutable_revoke()->add_credentials();
  e.mutable_revoke()->set_reason("restart");
  EXPECT_EQ(KeyValueLine(EventJson(e)),
            "revision=9 type=revoke issuer=pcscf-1 revoked=1 reason=restart");
}

TEST(OutputTest, PutEventCarriesTheCredentialsFields) {
  v1::Event e;
  e.set_revision(4);
  e.mutable_put()->set_username("bob");
  e.mutable_put()->set_realm("r.org");
  EXPECT_EQ(KeyValueLine(EventJson(e)),
            "revision=4 type=put username=bob realm=r.org expires_at_ms=0 issued_at_ms=0");
}

TEST(OutputTest, PrinterWritesJsonOrKeyValueLines) {
  std::ostringstream text, js;
  Printer(&text, false).Print({{"revision", 3}});
  Printer(&js, true).Print({{"revision", 3}});
  EXPECT_EQ(text.str(), "revision=3\n");
  EXPECT_EQ(js.str(), "{\"revision\":3}\n");
}

}  // namespace
}  // namespace turnbroker::ctl
