// The hand-written encodings must be exactly what the generated code reads.
#include "turnbroker/broker/record.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

namespace turnbroker::broker {
namespace {

using google::protobuf::util::MessageDifferencer;

v1::Credential Full() {
  v1::Credential c;
  c.set_realm("ims.example.org");
  c.set_username("dGhpcyBpcyByYW5kb20");
  c.set_key(std::string("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\xff", 16));
  c.set_expires_at_ms(1'800'000'600'000);
  c.set_issued_at_ms(1'800'000'000'000);
  c.set_subscriber("sip:+15551234567@ims.example.org");
  c.set_issuer("pcscf-1.site-a");
  c.add_scopes("farm-a");
  c.add_scopes("farm-b");
  return c;
}

TEST(RecordTest, EncodingParsesBackToTheSameCredential) {
  for (v1::Credential c : {Full(), v1::Credential()}) {
    if (c.realm().empty()) {  // minimal: only required fields
      c.set_realm("r");
      c.set_username("u");
      c.set_key(std::string(16, 'k'));
      c.set_expires_at_ms(1);
    }
    RecordRef r = Record::Create(c, 7);
    v1::Credential back;
    ASSERT_TRUE(back.ParseFromString(std::string(r->credential_wire())));
    EXPECT_TRUE(MessageDifferencer::Equals(back, c)) << back.DebugString();
    // Canonical: the same bytes protobuf itself writes.
    EXPECT_EQ(std::string(r->credential_wire()), c.SerializeAsString());
    EXPECT_EQ(r->realm(), c.realm());
    EXPECT_EQ(r->username(), c.username());
    EXPECT_EQ(r->key(), c.key());
    EXPECT_EQ(r->subscriber(), c.subscriber());
    EXPECT_EQ(r->issuer(), c.issuer());
    EXPECT_EQ(r->expires_at_ms(), c.expires_at_ms());
    EXPECT_EQ(r->revision(), 7u);
  }
}

TEST(RecordTest, IssuedAtOverride) {
  RecordRef r = Record::Create(Full(), 1, 42);
  v1::Credential back;
  r->ToProto(&back, true);
  EXPECT_EQ(back.issued_at_ms(), 42);
  EXPECT_EQ(r->issued_at_ms(), 42);
}

TEST(RecordTest, ToProtoLeavesOutTheKeyUnlessAsked) {
  RecordRef r = Record::Create(Full(), 1);
  v1::Credential c;
  r->ToProto(&c, false);
  EXPECT_TRUE(c.key().empty());
  r->ToProto(&c, true);
  EXPECT_EQ(c.key().size(), 16u);
}

TEST(RecordTest, Scopes) {
  RecordRef r = Record::Create(Full(), 1);
  EXPECT_TRUE(r->scoped());
  EXPECT_TRUE(r->HasScope("farm-a"));
  EXPECT_TRUE(r->HasScope("farm-b"));
  EXPECT_FALSE(r->HasScope("farm"));
  EXPECT_FALSE(r->HasScope(""));
  v1::Credential c = Full();
  c.clear_scopes();
  EXPECT_FALSE(Record::Create(c, 1)->scoped());
}

TEST(RecordTest, PutEventEncoding) {
  RecordRef r = Record::Create(Full(), 300);
  std::string bytes;
  AppendPutEvent(&bytes, *r, 300);
  EXPECT_EQ(bytes.size(), PutEventSize(*r, 300));
  v1::Event e;
  ASSERT_TRUE(e.ParseFromString(bytes));
  EXPECT_EQ(e.revision(), 300u);
  EXPECT_TRUE(MessageDifferencer::Equals(e.put(), Full()));
  // Revision 0 is omitted from the encoding; the size says so too.
  std::string zero;
  AppendPutEvent(&zero, *r, 0);
  EXPECT_EQ(zero.size(), PutEventSize(*r, 0));
}

TEST(RecordTest, ReferencesKeepTheRecordAlive) {
  RecordRef a = Record::Create(Full(), 1);
  RecordRef b = a;
  a = RecordRef();
  EXPECT_EQ(b->username(), Full().username());
  RecordRef c = std::move(b);
  EXPECT_FALSE(b);
  EXPECT_TRUE(c);
}

}  // namespace
}  // namespace turnbroker::broker
