/**
 * The original's port and binding driver options, read into one choice: `[DEFAULT] port_driver` (deprecated),
 * `default_port_driver`, `enabled_port_drivers`, `[binding] default_driver` (old name `driver`),
 * `enabled_drivers` and `link_iface`. Both the original's dotted names
 * (`kuryr_libnetwork.port_driver.drivers.nested`, `kuryr.lib.binding.drivers.macvlan`) and short names
 * (`nested`, `macvlan`) are accepted.
 */
import { fail } from '../errors.ts';

export const PORT_DRIVERS = ['veth', 'nested', 'vlan', 'sriov'] as const;
export type PortDriverName = (typeof PORT_DRIVERS)[number];

export const BINDING_DRIVERS = ['veth', 'macvlan', 'ipvlan', 'vlan', 'hw_veb'] as const;
export type BindingDriverName = (typeof BINDING_DRIVERS)[number];

/** The binding drivers each port driver works with (the original's `BINDING_DRIVERS` of each class). */
export const BINDINGS_OF: Readonly<Record<PortDriverName, readonly BindingDriverName[]>> = {
  veth: ['veth'],
  nested: ['macvlan', 'ipvlan'],
  vlan: ['vlan'],
  sriov: ['hw_veb'],
};

export interface PortDriverSettings {
  /** The driver of ports with `binding:vnic_type=normal`. */
  default: PortDriverName;
  /** Every enabled driver (the default among them); `sriov` takes the ports with an SR-IOV vnic type. */
  enabled: PortDriverName[];
  /** The binding driver of the default port driver. */
  binding: BindingDriverName;
  /** `[binding] link_iface`: the VM's NIC, the parent of containers' interfaces (nested and vlan). */
  linkIface: string;
}

const PORT_PREFIX = 'kuryr_libnetwork.port_driver.drivers.';
const BINDING_PREFIX = 'kuryr.lib.binding.drivers.';

/** A port driver name, dotted or short. */
export function portDriverName(text: string, where: string): PortDriverName {
  const short = text.trim().startsWith(PORT_PREFIX) ? text.trim().slice(PORT_PREFIX.length) : text.trim();
  if ((PORT_DRIVERS as readonly string[]).includes(short)) return short as PortDriverName;
  throw fail.config(
    `${where}: unknown port driver ${JSON.stringify(text)}; one of ${PORT_DRIVERS.join(', ')} (or ${PORT_PREFIX}<name>)`,
  );
}

/** A binding driver name, dotted or short. */
export function bindingDriverName(text: string, where: string): BindingDriverName {
  const short = text.trim().startsWith(BINDING_PREFIX) ? text.trim().slice(BINDING_PREFIX.length) : text.trim();
  if ((BINDING_DRIVERS as readonly string[]).includes(short)) return short as BindingDriverName;
  throw fail.config(
    `${where}: unknown binding driver ${JSON.stringify(text)}; one of ${BINDING_DRIVERS.join(', ')} (or ${BINDING_PREFIX}<name>)`,
  );
}

/** oslo.config's list: comma-separated, blanks dropped. */
function list(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** What the options ask for; `set(section, key)` tells whether a file set the key (defaults do not count). */
export interface PortDriverOptionValues {
  get(section: string, key: string): string;
  set(section: string, key: string): boolean;
  where(section: string, key: string): string;
}

/** Reads and checks the options; a contradiction is a configuration error naming the keys. */
export function portDriverSettings(o: PortDriverOptionValues): PortDriverSettings {
  // default_port_driver wins; the deprecated port_driver counts when only it is set.
  const defaultKey =
    !o.set('DEFAULT', 'default_port_driver') && o.set('DEFAULT', 'port_driver') ? 'port_driver' : 'default_port_driver';
  const def = portDriverName(o.get('DEFAULT', defaultKey), o.where('DEFAULT', defaultKey));
  const enabledWhere = o.where('DEFAULT', 'enabled_port_drivers');
  const enabledText = o.set('DEFAULT', 'enabled_port_drivers') ? o.get('DEFAULT', 'enabled_port_drivers') : def;
  const enabled = [...new Set(list(enabledText).map((n) => portDriverName(n, enabledWhere)))];
  if (!enabled.includes(def)) {
    throw fail.config(
      `${o.where('DEFAULT', defaultKey)}: port driver ${def} is not in enabled_port_drivers (${enabled.join(', ')})`,
    );
  }
  const bindingKey = !o.set('binding', 'default_driver') && o.set('binding', 'driver') ? 'driver' : 'default_driver';
  const bindingSet = o.set('binding', bindingKey);
  // Unset, the binding follows the port driver (the original's default, veth, fits only the veth driver).
  const binding = bindingSet
    ? bindingDriverName(o.get('binding', bindingKey), o.where('binding', bindingKey))
    : (BINDINGS_OF[def][0] ?? 'veth');
  if (!BINDINGS_OF[def].includes(binding)) {
    throw fail.config(
      `${o.where('binding', bindingKey)}: binding driver ${binding} does not work with the ${def} port driver (use ${BINDINGS_OF[def].join(' or ')})`,
    );
  }
  if (o.set('binding', 'enabled_drivers')) {
    const where = o.where('binding', 'enabled_drivers');
    const enabledBindings = list(o.get('binding', 'enabled_drivers')).map((n) => bindingDriverName(n, where));
    if (!enabledBindings.includes(binding)) {
      throw fail.config(`${where}: the binding driver ${binding} is not enabled (${enabledBindings.join(', ')})`);
    }
  }
  const linkIface = o.get('binding', 'link_iface').trim();
  if ((def === 'nested' || def === 'vlan') && linkIface === '') {
    throw fail.config(
      `${o.where('binding', 'link_iface')}: the ${def} port driver needs the VM's interface (e.g. link_iface = eth0)`,
    );
  }
  return { default: def, enabled, binding, linkIface };
}

/** The host-only default: veth ports bound with veth pairs. */
export const VETH_ONLY: PortDriverSettings = { default: 'veth', enabled: ['veth'], binding: 'veth', linkIface: '' };
