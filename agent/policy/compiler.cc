#include "compiler.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "agent/lib/stamp.h"

namespace shunt::policy {

const model::PortRoute* PolicyCompiler::PortRoute(model::RouteKind kind, const std::string& ns,
                                                  const std::string& name) const {
  const auto& cache = kind == model::RouteKind::kTcp ? tcp_routes_ : udp_routes_;
  auto it = cache.find(Name{ns, name});
  return it == cache.end() ? nullptr : &it->second.object;
}

const model::HttpRouteGroup* PolicyCompiler::HttpRouteGroup(const std::string& ns,
                                                            const std::string& name) const {
  auto it = http_groups_.find(Name{ns, name});
  return it == http_groups_.end() ? nullptr : &it->second.object;
}

// Brings a route cache to `now`; the users of every route that appeared,
// changed or went away become dirty. Objects usually come in the same
// order as last time, so most are matched by position, without hashing.
template <typename T>
void PolicyCompiler::SyncRoutes(const std::vector<T>& now, model::RouteKind kind,
                                absl::node_hash_map<Name, Cached<T>>& cache,
                                std::vector<Cached<T>*>& order,
                                absl::flat_hash_set<Target*>& dirty) {
  auto mark_users = [&](const Name& name) {
    auto it = route_users_.find(RouteRef{kind, name});
    if (it != route_users_.end()) dirty.insert(it->second.begin(), it->second.end());
  };
  std::vector<Cached<T>*> next;
  next.reserve(now.size());
  for (size_t i = 0; i < now.size(); ++i) {
    const T& o = now[i];
    Cached<T>* c = nullptr;
    if (i < order.size() && order[i]->object.namespace_ == o.namespace_ &&
        order[i]->object.name == o.name) {
      c = order[i];
    } else if (auto it = cache.find(Name{o.namespace_, o.name}); it != cache.end()) {
      c = &it->second;
    }
    if (c && c->seen == update_) continue;  // a duplicate: the first counts
    if (!c) {
      c = &cache.emplace(Name{o.namespace_, o.name}, Cached<T>{o, update_}).first->second;
      mark_users(Name{o.namespace_, o.name});
    } else {
      c->seen = update_;
      if (!(c->object == o)) {
        c->object = o;
        mark_users(Name{o.namespace_, o.name});
      }
    }
    next.push_back(c);
  }
  if (next.size() != cache.size()) {
    for (auto it = cache.begin(); it != cache.end();) {
      if (it->second.seen == update_) {
        ++it;
        continue;
      }
      mark_users(it->first);
      cache.erase(it++);
    }
  }
  order = std::move(next);
}

void PolicyCompiler::Withdraw(Target& t) {
  if (!t.compiled) return;
  namespace_entries_[t.object.namespace_] -= t.grants.grants.size();
  for (const TargetGrant& g : t.grants.grants) {
    auto it = contributions_.find(g.key);
    if (it == contributions_.end()) continue;
    auto& v = it->second;
    for (auto c = v.begin(); c != v.end(); ++c) {
      if (c->rule_id == t.rule_id) {
        v.erase(c);
        break;
      }
    }
    if (v.empty()) contributions_.erase(it);
    touched_.insert(g.key);
  }
  for (uint32_t id : t.grants.identities) {
    auto it = identity_refs_.find(id);
    if (it == identity_refs_.end() || --it->second.count > 0) continue;
    policy_.identities.erase(it->second.key);
    identity_refs_.erase(it);
  }
  for (const model::TargetRule& r : t.object.rules) {
    auto it = route_users_.find(RouteRef{r.kind, {t.object.namespace_, r.name}});
    if (it == route_users_.end()) continue;
    it->second.erase(&t);
    if (it->second.empty()) route_users_.erase(it);
  }
  t.grants.grants.clear();
  t.grants.problems.clear();
  t.grants.identities.clear();
  t.grants.l7 = false;
  t.compiled = false;
}

void PolicyCompiler::Contribute(Target& t) {
  t.grants = CompileTarget(t.object, *this, ids_);
  size_t& used = namespace_entries_[t.object.namespace_];
  if (used + t.grants.grants.size() <= namespace_budget_) {
    t.last_fitting = t.grants;
  } else {
    std::string why = absl::StrCat(
        "grants ", t.grants.grants.size(), " policy entries (sources x ports x protocols), but ",
        "namespace ", t.object.namespace_, " has ",
        namespace_budget_ - std::min(used, namespace_budget_), " of its ", namespace_budget_,
        " left (the policy map is shared by every namespace)");
    std::vector<std::string> problems = std::move(t.grants.problems);
    if (t.last_fitting && used + t.last_fitting->grants.size() <= namespace_budget_) {
      t.grants = *t.last_fitting;
      absl::StrAppend(&why, "; keeping its last grants that fitted");
    } else {
      t.grants.grants.clear();
      t.grants.identities.clear();
      t.grants.l7 = false;
      absl::StrAppend(&why, "; it grants nothing");
    }
    problems.insert(problems.begin(), std::move(why));
    t.grants.problems = std::move(problems);
  }
  used += t.grants.grants.size();
  for (const TargetGrant& g : t.grants.grants) {
    contributions_[g.key].push_back({g.verdict, t.rule_id});
    touched_.insert(g.key);
  }
  for (uint32_t id : t.grants.identities) {
    auto [it, inserted] = identity_refs_.try_emplace(id);
    if (inserted) {
      if (const auto* key = ids_.KeyOf(id)) it->second.key = *key;
      policy_.identities.insert(it->second.key);
    }
    ++it->second.count;
  }
  for (const model::TargetRule& r : t.object.rules)
    route_users_[RouteRef{r.kind, {t.object.namespace_, r.name}}].insert(&t);
  t.compiled = true;
}

// ALLOW beats L7; among equals the TrafficTarget first by namespace/name is
// named, so the answer does not depend on file order.
std::optional<Grant> PolicyCompiler::Winner(const EntryKey& k) const {
  auto it = contributions_.find(k);
  if (it == contributions_.end() || it->second.empty()) return std::nullopt;
  Grant best = it->second.front();
  for (const Grant& g : it->second) {
    if (g.verdict == SHUNT_VERDICT_ALLOW && best.verdict != SHUNT_VERDICT_ALLOW) {
      best = g;
    } else if (g.verdict == best.verdict && g.rule_id != best.rule_id) {
      const model::TrafficTarget& a = by_rule_.at(g.rule_id)->object;
      const model::TrafficTarget& b = by_rule_.at(best.rule_id)->object;
      if (std::tie(a.namespace_, a.name) < std::tie(b.namespace_, b.name)) best = g;
    }
  }
  return best;
}

// An any-port L4 allow also covers port-specific L7 entries of the pair.
std::optional<Grant> PolicyCompiler::Final(const EntryKey& k) const {
  std::optional<Grant> w = Winner(k);
  if (w && w->verdict == SHUNT_VERDICT_L7 && k.port != 0) {
    std::optional<Grant> any = Winner({k.src, k.dst, 0, k.proto});
    if (any && any->verdict == SHUNT_VERDICT_ALLOW) return any;
  }
  return w;
}

// Recomputes the policy entries that touched contributions can change.
void PolicyCompiler::Settle() {
  absl::btree_set<EntryKey> affected = touched_;
  for (const EntryKey& k : touched_) {
    if (k.port != 0) continue;
    for (auto it = policy_.entries.lower_bound({k.src, k.dst, 0, 0});
         it != policy_.entries.end() && it->first.src == k.src && it->first.dst == k.dst; ++it)
      if (it->first.proto == k.proto) affected.insert(it->first);
  }
  touched_.clear();
  for (const EntryKey& k : affected) {
    std::optional<policy::Grant> f = Final(k);
    auto it = policy_.entries.find(k);
    if (!f) {
      if (it == policy_.entries.end()) continue;
      policy_.entries.erase(it);
    } else if (it == policy_.entries.end()) {
      policy_.entries.emplace(k, *f);
    } else if (it->second != *f) {
      it->second = *f;
    } else {
      continue;
    }
    changes_.insert(k);
  }
}

int PolicyCompiler::Update(const model::Objects& objects) {
  ++update_;
  absl::flat_hash_set<Target*> dirty;
  SyncRoutes(objects.tcp_routes, model::RouteKind::kTcp, tcp_routes_, tcp_order_, dirty);
  SyncRoutes(objects.udp_routes, model::RouteKind::kUdp, udp_routes_, udp_order_, dirty);
  SyncRoutes(objects.http_route_groups, model::RouteKind::kHttp, http_groups_, http_order_, dirty);

  bool rules_changed = false;
  std::vector<Target*> next;
  next.reserve(objects.traffic_targets.size());
  const auto& now = objects.traffic_targets;
  for (size_t i = 0; i < now.size(); ++i) {
    const model::TrafficTarget& o = now[i];
    Target* t = nullptr;
    if (i < target_order_.size() && target_order_[i]->object.namespace_ == o.namespace_ &&
        target_order_[i]->object.name == o.name) {
      t = target_order_[i];
    } else if (auto it = targets_.find(Name{o.namespace_, o.name}); it != targets_.end()) {
      t = &it->second;
    }
    if (t && t->seen == update_) continue;  // a duplicate: the first counts
    if (!t) {
      t = &targets_[Name{o.namespace_, o.name}];
      t->object = o;
      t->rule_id = rule_ids_.Get({o.namespace_, o.name});
      by_rule_[t->rule_id] = t;
      policy_.rules[t->rule_id] = o.Key();
      rules_changed = true;
      dirty.insert(t);
    } else if (!(t->object == o)) {
      Withdraw(*t);  // with the old object's route references
      t->object = o;
      dirty.insert(t);
    }
    t->seen = update_;
    next.push_back(t);
  }
  bool removed = false;
  if (next.size() != targets_.size()) {
    for (auto it = targets_.begin(); it != targets_.end();) {
      Target& t = it->second;
      if (t.seen == update_) {
        ++it;
        continue;
      }
      Withdraw(t);
      dirty.erase(&t);
      by_rule_.erase(t.rule_id);
      policy_.rules.erase(t.rule_id);
      rules_changed = removed = true;
      targets_.erase(it++);
    }
  }
  const bool reordered = next != target_order_;  // problems are listed in object order
  target_order_ = std::move(next);

  // In object order, so new identities are numbered as the objects list them.
  int compiled = 0;
  if (!dirty.empty()) {
    for (Target* t : target_order_) {
      if (!dirty.contains(t)) continue;
      Withdraw(*t);
      Contribute(*t);
      ++compiled;
    }
  }
  Settle();
  if (rules_changed) policy_.rules_stamp = lib::NextStamp();
  if (compiled > 0 || removed || reordered) {
    policy_.problems.clear();
    policy_.l7_targets = 0;
    for (const Target* t : target_order_) {
      policy_.l7_targets += t->grants.l7;
      for (const std::string& why : t->grants.problems) {
        model::Problem pr;
        pr.ref.kind = "TrafficTarget";
        pr.ref.namespace_ = t->object.namespace_;
        pr.ref.name = t->object.name;
        pr.reason = why;
        policy_.problems.push_back(std::move(pr));
      }
    }
  }
  return compiled;
}

std::vector<EntryKey> PolicyCompiler::TakeChanges() {
  std::vector<EntryKey> out(changes_.begin(), changes_.end());
  changes_.clear();
  return out;
}

CompiledPolicy Compile(const model::Objects& objects, endpoints::IdentityAllocator& ids,
                       endpoints::IdentityAllocator& rule_ids) {
  PolicyCompiler c(ids, rule_ids);
  c.Update(objects);
  return c.policy();
}

Decision Decide(const CompiledPolicy& p, uint32_t src, uint32_t dst, uint16_t port, uint8_t proto) {
  if (auto it = p.entries.find({src, dst, port, proto}); it != p.entries.end())
    return {it->second.verdict, it->second.rule_id, port};
  if (auto it = p.entries.find({src, dst, 0, proto}); it != p.entries.end())
    return {it->second.verdict, it->second.rule_id, 0};
  return {};
}

}  // namespace shunt::policy
