// Objects a thread keeps for reuse, their memory grown: what a connection
// needs only while a request is in flight (a parsed head with its header
// strings, the request's record and span) is taken from here when the
// request starts and given back when the connection goes idle. So a busy
// connection's next request allocates nothing (the object comes back with
// its strings' memory) and an idle one keeps none of it (HAProxy's pools;
// tools/bench shunt-l7-alloc-bench and shunt-l7-bench's idle memory).
//
// T needs Reset() (as new, keeping its memory) and KeepInPool() (false when
// it grew too big to be worth keeping: it is freed instead). Any thread may
// give an object back: it joins that thread's list.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace shunt::proxy {

namespace object_pool {

// Objects a thread keeps of each type, at most.
inline constexpr size_t kKeep = 64;

template <typename T>
struct FreeList {
  FreeList() { items.reserve(kKeep); }
  ~FreeList() {
    for (T* p : items) delete p;
    gone = true;
  }
  std::vector<T*> items;
  // Set once the thread's list is gone (an object given back later in the
  // thread's exit is freed); trivially destructible, so always valid.
  static inline thread_local bool gone = false;
};

template <typename T>
FreeList<T>& Local() {
  thread_local FreeList<T> list;
  return list;
}

template <typename T>
struct GiveBack {
  void operator()(T* p) const {
    if (p == nullptr) return;
    if (!FreeList<T>::gone && p->KeepInPool()) {
      FreeList<T>& f = Local<T>();
      if (f.items.size() < kKeep) {
        p->Reset();
        f.items.push_back(p);
        return;
      }
    }
    delete p;
  }
};

}  // namespace object_pool

// Owns an object of the pool's: back to the thread's list when let go.
template <typename T>
using Pooled = std::unique_ptr<T, object_pool::GiveBack<T>>;

// One of the thread's kept objects (Reset), or a new one.
template <typename T>
Pooled<T> TakePooled() {
  if (!object_pool::FreeList<T>::gone) {
    object_pool::FreeList<T>& f = object_pool::Local<T>();
    if (!f.items.empty()) {
      T* p = f.items.back();
      f.items.pop_back();
      return Pooled<T>(p);
    }
  }
  return Pooled<T>(new T());
}

}  // namespace shunt::proxy
