// Helpers for defining GObject subclasses from Swift. The unsafe casts between GObject instance
// and class pointers live here so element code can stay typed.
import CBackdropShim
import CGStreamer

/// Registers `name` as a subclass of `parent`; class_init and instance_init are C callbacks.
func registerSubclass(
  parent: GType, name: String,
  classInit: @convention(c) (gpointer?, gpointer?) -> Void,
  instanceInit: @convention(c) (UnsafeMutablePointer<GTypeInstance>?, gpointer?) -> Void
) -> GType {
  bd_register_subclass(parent, name, classInit, instanceInit)
}

/// Attaches a Swift object to a GObject instance; released when the instance is finalized.
func attachState<T: AnyObject>(_ state: T, to instance: gpointer) {
  bd_instance_set_state(instance, Unmanaged.passRetained(state).toOpaque()) { pointer in
    guard let pointer else { return }
    Unmanaged<AnyObject>.fromOpaque(pointer).release()
  }
}

/// The Swift object attached to `instance`, or nil (e.g. after finalize started).
func attachedState<T: AnyObject>(_ instance: gpointer?, as type: T.Type) -> T? {
  guard let instance, let raw = bd_instance_get_state(instance) else { return nil }
  return Unmanaged<AnyObject>.fromOpaque(raw).takeUnretainedValue() as? T
}

/// Typed views of a class or instance pointer.
func classStruct<T>(_ klass: gpointer?, as type: T.Type) -> UnsafeMutablePointer<T> {
  klass!.assumingMemoryBound(to: T.self)
}

func asObject(_ instance: gpointer?) -> UnsafeMutablePointer<GObject> {
  instance!.assumingMemoryBound(to: GObject.self)
}

func asElement(_ instance: gpointer?) -> UnsafeMutablePointer<GstElement> {
  instance!.assumingMemoryBound(to: GstElement.self)
}

/// GValue helpers for property getters and setters.
extension UnsafeMutablePointer where Pointee == GValue {
  var stringValue: String? { g_value_get_string(self).map { String(cString: $0) } }
  func setString(_ value: String?) {
    if let value { g_value_set_string(self, value) } else { g_value_set_string(self, nil) }
  }
}

extension UnsafePointer where Pointee == GValue {
  var stringValue: String? { g_value_get_string(self).map { String(cString: $0) } }
}

/// Installs a property on a GObject class; GLib copies the name, nick and blurb.
func installProperty(_ klass: gpointer?, id: UInt32, _ spec: UnsafeMutablePointer<GParamSpec>?) {
  g_object_class_install_property(classStruct(klass, as: GObjectClass.self), id, spec)
}
