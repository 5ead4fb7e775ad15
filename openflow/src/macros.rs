//! `enum_with_unknown!`: protocol enums whose unknown values are kept, so
//! every code decodes to something that re-encodes to the same bytes.

/// Declares a protocol enum over an integer type with an `Unknown(T)`
/// variant, conversions both ways, the spec name of each known value, and
/// JSON serialization as that name (or the number when unknown, or always
/// numeric under [`crate::json::NumericEnums`]).
#[macro_export]
macro_rules! enum_with_unknown {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr => $spec:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this codec has no name for, kept as is.
            Unknown($ty),
        }

        impl $name {
            /// The spec's name without its prefix, if the value is known.
            pub fn name(&self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($spec), )+
                    $name::Unknown(_) => None,
                }
            }

            /// Looks a value up by its spec name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $( $spec => Some($name::$variant), )+
                    _ => None,
                }
            }

            /// The wire value.
            pub fn value(&self) -> $ty {
                <$ty>::from(*self)
            }

            /// Every known value, for tests and property generators.
            pub const KNOWN: &'static [$name] = &[ $( $name::$variant ),+ ];
        }

        impl From<$ty> for $name {
            fn from(v: $ty) -> Self {
                match v {
                    $( x if x == $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(v: $name) -> $ty {
                match v {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}", <$ty>::from(*self)),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self.name() {
                    Some(n) if !$crate::json::numeric() => s.serialize_str(n),
                    _ => <$ty as ::serde::Serialize>::serialize(&<$ty>::from(*self), s),
                }
            }
        }
    };
}
