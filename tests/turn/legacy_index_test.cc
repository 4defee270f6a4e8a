// The index of credentials written before the index kept selectors (legacy_index.h).
#include "turnbroker/turn/legacy_index.h"

#include <gtest/gtest.h>

#include "fake_redis.h"
#include "frames.h"

namespace turnbroker::turn {
namespace {

using namespace turnbroker::turn::testing;

TEST(LegacyIndexTest, MatchesSelectorsAndForgets) {
  LegacyIndex index;
  index.Add({"r1/u1", 2'000, "pcscf-1", "sip:a@x"});
  index.Add({"r2/u1", 2'000, "pcscf-2", "sip:b@x"});
  index.Add({"r1/u2", 2'000, "pcscf-1", "sip:b@x"});
  index.Add({"r1/gone", 500, "pcscf-1", "sip:a@x"});  // expired at 1'000
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(index.Match(ByUsername("u1"), 1'000)),
            (std::vector<std::string>{"r1/u1", "r2/u1"}));
  EXPECT_EQ(index.Match(ByUsername("u1", "r2"), 1'000), (std::vector<std::string>{"r2/u1"}));
  EXPECT_EQ(sorted(index.Match(BySubscriber("sip:b@x"), 1'000)),
            (std::vector<std::string>{"r1/u2", "r2/u1"}));
  EXPECT_EQ(sorted(index.Match(ByIssuer("pcscf-1"), 1'000)),
            (std::vector<std::string>{"r1/u1", "r1/u2"}));
  index.Remove("r1/u2");
  EXPECT_EQ(index.Match(ByIssuer("pcscf-1"), 1'000), (std::vector<std::string>{"r1/u1"}));
  EXPECT_EQ(index.size(), 3u);
  EXPECT_TRUE(index.Match(BySubscriber("sip:nobody"), 1'000).empty());
}

}  // namespace
}  // namespace turnbroker::turn
